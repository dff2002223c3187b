import { webApi } from '@slack/bolt';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { type BackoffOptions, backoffDelay } from '../backoff.js';
import {
  type ChannelAdapter,
  type ChannelEvent,
  type ChannelHealth,
  ChannelSendError,
  type ChannelSink,
  HealthTracker,
  type PublishedCommand,
  type ReplyAddress,
  type SendOptions,
} from '../channel-adapter.js';
import type { SlackConfig } from '../channels-config.js';
import { isBadConfigError, toSendError } from './slack-errors.js';
import { COMMAND_NOT_TAKEN, eventFromCallback, eventFromCommand } from './slack-events.js';
import { slackLogger } from './slack-logger.js';
import {
  type EventCallback,
  eventCallbackSchema,
  type SlashCommand,
  slashCommandSchema,
} from './slack-payloads.js';
import { postedParts, replyMetadata } from './slack-posted-parts.js';
import { type EnvelopeOutcome, SlackSocket, type SocketEnvelope } from './slack-socket.js';
import { slackParts } from './slack-text.js';
import { slackWebhook } from './slack-webhook.js';

export interface SlackAdapterOptions {
  config: Readonly<SlackConfig>;
  logger: Logger;
  /** Clock for signature freshness and health times. Default `Date.now`. */
  now?: () => number;
  /** Back-off between attempts to reach Slack (auth.test, Socket Mode). Default 1 s doubling to 30 s. */
  retry?: BackoffOptions;
  /** Timeout of each Web API call. Default 10 s (the Web API client's own default is none). */
  requestTimeoutMs?: number;
}

/**
 * Slack through the Events API (HTTP mode: routes on the HTTP channel's server) or Socket Mode.
 *
 * Inbound: mentions in channels (answered in their thread) and direct messages; slash commands
 * as `/name args`. Slack is acknowledged only after the agent's sink has accepted the event.
 * Outbound: chat.postMessage, split at 3,900 characters, without the Web API client's hidden
 * retries so the outbox decides (and fails over) on each failure.
 *
 * No `typing`: Slack has no typing indicator for bots on the Events API (the old RTM
 * `user_typing` is gone for new apps), so there is nothing honest to show.
 *
 * The Web API client is @slack/web-api's `WebClient`, re-exported by Bolt; signatures use Bolt's
 * `verifySlackRequest`; Socket Mode uses Bolt's `SocketModeReceiver`. Bolt's `App` is not used: it
 * acknowledges events before its listeners run, and it owns its HTTP server, where this agent
 * serves everything on one fastify instance.
 */
export class SlackAdapter implements ChannelAdapter {
  readonly name = 'slack' as const;
  readonly webhook?: FastifyPluginAsync;
  readonly exclusiveConnection: boolean;
  private readonly config: Readonly<SlackConfig>;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly retry: BackoffOptions;
  private readonly tracker: HealthTracker;
  private readonly client: webApi.WebClient;
  private readonly socket: SlackSocket | undefined;
  private sink: ChannelSink | undefined;
  private botUserId: string | undefined;
  private started = false;
  private stopped = false;
  private connecting = false;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(options: SlackAdapterOptions) {
    this.config = options.config;
    this.logger = options.logger.child({ channel: 'slack' });
    this.now = options.now ?? Date.now;
    this.retry = options.retry ?? {};
    this.tracker = new HealthTracker(this.now);
    const libraryLogger = slackLogger(this.logger.child({ lib: 'slack' }));
    const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.client = new webApi.WebClient(this.config.botToken, {
      slackApiUrl: this.config.apiUrl,
      logger: libraryLogger,
      // The outbox retries (and fails over); retries in here would hide failures from it.
      retryConfig: { retries: 0 },
      // A 429 becomes an error with Retry-After instead of a silent wait inside send().
      rejectRateLimitedCalls: true,
      timeout: requestTimeoutMs,
    });

    this.exclusiveConnection = this.config.mode === 'socket';
    if (this.config.mode === 'socket') {
      if (this.config.appToken === undefined)
        throw new RangeError('slack.appToken is required in socket mode');
      this.socket = new SlackSocket({
        appToken: this.config.appToken,
        apiUrl: this.config.apiUrl,
        requestTimeoutMs,
        logger: libraryLogger,
        onEnvelope: (envelope) => this.onEnvelope(envelope),
        onDown: () => this.onSocketDown(),
      });
    } else {
      const signingSecret = this.config.signingSecret;
      if (signingSecret === undefined) throw new RangeError('slack.signingSecret is required in http mode');
      this.webhook = slackWebhook({
        eventsPath: this.config.eventsPath,
        commandsPath: this.config.commandsPath,
        signingSecret,
        now: this.now,
        logger: this.logger,
        ready: () => this.sink !== undefined && !this.stopped,
        onEvent: (body) => this.receiveEvent(body),
        onCommand: (command) => this.receiveCommand(command),
      });
    }
  }

  /**
   * Learns the bot's user id (auth.test) and, in Socket Mode, connects. If Slack cannot be
   * reached it resolves anyway and keeps trying in the background; a token Slack refuses is
   * configuration, and throws.
   */
  async start(sink: ChannelSink, commands: readonly PublishedCommand[]): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    this.sink = sink;
    if (commands.length > 0) {
      // Slack has no API for a bot to publish slash commands: they are set in the app's settings.
      this.logger.info(
        { commands: commands.map((c) => `/${c.name}`), path: this.config.commandsPath },
        'slack slash commands must be created in the Slack app settings',
      );
    }
    try {
      await this.connect();
    } catch (error) {
      if (isBadConfigError(error)) {
        this.started = false;
        this.sink = undefined;
        const which = this.config.mode === 'socket' ? 'bot or app token' : 'bot token';
        throw new Error(`Slack refused the ${which}: ${message(error)}`, { cause: error });
      }
      this.connectFailed(error);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.started = false;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    await this.socket?.close();
    this.tracker.disconnected();
  }

  /** Posts each part in order (in the thread when the address has one); resolves when all were accepted. */
  async send(address: ReplyAddress, text: string, options: SendOptions = {}): Promise<void> {
    if (address.channel !== 'slack') {
      throw new ChannelSendError(`the Slack channel cannot deliver to ${address.channel}`, {
        permanent: true,
      });
    }
    const { replyId } = options;
    const already =
      replyId !== undefined && options.mayRepeat ? await this.alreadyPosted(address, replyId) : new Set();
    try {
      for (const [index, part] of slackParts(text).entries()) {
        if (already.has(index)) continue;
        await this.client.chat.postMessage({
          channel: address.conversation,
          text: part,
          ...(address.thread === undefined ? {} : { thread_ts: address.thread }),
          ...(replyId === undefined ? {} : { metadata: replyMetadata(replyId, index) }),
        });
      }
    } catch (error) {
      const failure = toSendError(error);
      this.tracker.sendFailed(failure);
      throw failure;
    }
    this.tracker.sent();
  }

  health(): ChannelHealth {
    return this.tracker.snapshot();
  }

  /**
   * The parts of a reply a crashed attempt already posted. Reading history needs the
   * `*:history` scopes; without them (or if Slack cannot answer) everything is posted again.
   */
  private async alreadyPosted(address: ReplyAddress, replyId: string): Promise<Set<number>> {
    try {
      const parts = await postedParts(this.client, address, replyId);
      if (parts.size > 0)
        this.logger.info(
          { replyId, parts: [...parts] },
          'reply parts already posted before a crash; not posting them again',
        );
      return parts;
    } catch (error) {
      this.logger.warn(
        { replyId, err: (error as Error).message },
        'cannot read the conversation back (history scopes?); posting the whole reply again',
      );
      return new Set();
    }
  }

  private async connect(): Promise<void> {
    this.connecting = true;
    try {
      if (this.botUserId === undefined) {
        const result = await this.client.auth.test();
        if (typeof result.user_id !== 'string') throw new Error('auth.test returned no user_id');
        this.botUserId = result.user_id;
        this.logger.info({ botUserId: result.user_id, team: result.team_id }, 'slack bot identified');
      }
      if (this.stopped) return;
      await this.socket?.open();
      this.failures = 0;
      this.tracker.connected();
    } finally {
      this.connecting = false;
    }
  }

  private connectFailed(error: unknown): void {
    this.tracker.disconnected(error);
    if (this.stopped) return;
    const delay = backoffDelay(this.failures, this.retry);
    this.failures += 1;
    this.logger.warn({ err: error, retryInMs: delay }, 'slack unreachable; retrying');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().catch((next: unknown) => this.connectFailed(next));
    }, delay);
  }

  private onSocketDown(): void {
    if (this.stopped || this.connecting || this.reconnectTimer !== undefined) return;
    this.connectFailed(new Error('the Socket Mode connection closed'));
  }

  /** Hands an event to the agent; throws when the agent did not accept it (Slack then retries). */
  private async receiveEvent(body: EventCallback): Promise<void> {
    const event = eventFromCallback(body, this.botUserId);
    if (event === undefined) return;
    await this.deliver(event);
  }

  private async receiveCommand(command: SlashCommand): Promise<void> {
    await this.deliver(eventFromCommand(command));
  }

  private async deliver(event: ChannelEvent): Promise<void> {
    const sink = this.sink;
    if (sink === undefined || this.stopped) throw new Error('the Slack channel is not started');
    this.tracker.event();
    await sink.receive(event);
  }

  private async onEnvelope(envelope: SocketEnvelope): Promise<EnvelopeOutcome> {
    if (envelope.type === 'events_api') {
      const body = eventCallbackSchema.safeParse(envelope.body);
      if (!body.success) return { ack: true };
      try {
        await this.receiveEvent(body.data);
        return { ack: true };
      } catch (error) {
        // No ack: Slack redelivers the envelope (with retry_attempt), like a 500 over HTTP.
        this.logger.warn(
          { err: error, eventId: body.data.event_id },
          'slack event not accepted; Slack will retry',
        );
        return { ack: false };
      }
    }
    if (envelope.type === 'slash_commands') {
      const command = slashCommandSchema.safeParse(envelope.body);
      if (!command.success) return { ack: true };
      try {
        await this.receiveCommand(command.data);
        return { ack: true };
      } catch (error) {
        this.logger.warn({ err: error, command: command.data.command }, 'slack command not accepted');
        return { ack: true, payload: COMMAND_NOT_TAKEN };
      }
    }
    // Interactivity and anything newer: acknowledged so Slack does not keep redelivering it.
    return { ack: true };
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
