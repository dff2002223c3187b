import type { Logger as SlackLogger, webApi } from '@slack/bolt';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { secretScrubber } from '../../core/logger.js';
import { oneAtATime } from '../../core/one-at-a-time.js';
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
import type { ChannelsConfig, SlackConfig } from '../channels-config.js';
import { DEFAULT_SECRET_GRACE_MS, RotatingSecret } from '../rotating-secret.js';
import { isBadConfigError, platformError, toSendError } from './slack-errors.js';
import { COMMAND_NOT_TAKEN, eventFromCallback, eventFromCommand } from './slack-events.js';
import { slackLogger } from './slack-logger.js';
import {
  type EventCallback,
  eventCallbackSchema,
  type SlashCommand,
  slashCommandSchema,
} from './slack-payloads.js';
import { postedParts, replyMetadata } from './slack-posted-parts.js';
import {
  changedSecrets,
  changedSettings,
  SlackRenewError,
  type SlackSecretName,
  type SlackSecrets,
} from './slack-secrets.js';
import { type EnvelopeOutcome, SlackSocket, type SocketEnvelope } from './slack-socket.js';
import { slackParts } from './slack-text.js';
import { slackWebClient } from './slack-web-client.js';
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
  /**
   * How long a rotated-out signing secret still verifies requests (HTTP mode), while the new one
   * is registered with Slack. Default `DEFAULT_SECRET_GRACE_MS` (15 minutes).
   */
  secretGraceMs?: number;
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
 *
 * Secrets rotate without a restart (`renewSecrets`): a new bot token swaps the Web API client, a
 * new signing secret is accepted beside the old one for a grace period, and a new app token opens
 * a second socket before the first is drained and closed, so no event is lost or taken twice.
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
  private readonly libraryLogger: SlackLogger;
  private readonly requestTimeoutMs: number;
  /** Swapped for a new one when the bot token rotates. */
  private client: webApi.WebClient;
  /** Socket Mode; replaced when the app token rotates. */
  private socket: SlackSocket | undefined;
  /** HTTP mode. */
  private readonly signingSecret: RotatingSecret | undefined;
  /** The secret values in use, to tell a rotation from a repeat of the same configuration. */
  private readonly secrets: SlackSecrets;
  /** Renewals run one at a time: two overlapping ones could each replace the other's socket. */
  private readonly renewOneAtATime = oneAtATime((next: SlackConfig) => this.renew(next));
  /** The connect attempt in flight (or the last one), which an app token switch waits out. */
  private connection: Promise<void> | undefined;
  /** The other settings last reported as needing a restart, so each change is logged once. */
  private ignoredSettings = '';
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
    this.libraryLogger = slackLogger(this.logger.child({ lib: 'slack' }));
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.client = this.webClient(this.config.botToken);
    this.secrets = { botToken: this.config.botToken };

    this.exclusiveConnection = this.config.mode === 'socket';
    if (this.config.mode === 'socket') {
      if (this.config.appToken === undefined)
        throw new RangeError('slack.appToken is required in socket mode');
      this.secrets.appToken = this.config.appToken;
      this.socket = this.newSocket(this.config.appToken);
    } else {
      if (this.config.signingSecret === undefined)
        throw new RangeError('slack.signingSecret is required in http mode');
      this.secrets.signingSecret = this.config.signingSecret;
      const signingSecret = new RotatingSecret(
        this.config.signingSecret,
        options.secretGraceMs ?? DEFAULT_SECRET_GRACE_MS,
        this.now,
      );
      this.signingSecret = signingSecret;
      this.webhook = slackWebhook({
        eventsPath: this.config.eventsPath,
        commandsPath: this.config.commandsPath,
        signingSecrets: () => signingSecret.accepted(),
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
   * Takes rotated secrets from `channels.slack` (see `ChannelAdapter.renewSecrets`). Resolves once
   * sends use the new bot token, requests signed with the new signing secret verify, and (if
   * connected) the socket runs on the new app token. Rejects with `SlackRenewError` when the new
   * app token cannot open a socket; the old connection then keeps running, and the bot token and
   * signing secret taken before it stay taken.
   */
  async renewSecrets(channels: ChannelsConfig): Promise<void> {
    const next = channels.slack;
    if (next === undefined) return;
    return this.renewOneAtATime(next);
  }

  private async renew(next: Readonly<SlackConfig>): Promise<void> {
    this.noteIgnoredSettings(next);
    const changed = changedSecrets(this.secrets, next, this.config.mode);
    const taken: SlackSecretName[] = [];
    try {
      if (changed.botToken !== undefined) {
        this.client = this.webClient(changed.botToken);
        this.secrets.botToken = changed.botToken;
        taken.push('botToken');
      }
      if (changed.signingSecret !== undefined && this.signingSecret !== undefined) {
        this.signingSecret.set(changed.signingSecret);
        this.secrets.signingSecret = changed.signingSecret;
        taken.push('signingSecret');
      }
      if (changed.appToken !== undefined) {
        await this.renewAppToken(changed.appToken);
        taken.push('appToken');
      }
    } finally {
      // Names only: the values never reach a log line.
      if (taken.length > 0) this.logger.info({ secrets: taken }, 'slack secrets renewed');
    }
  }

  private noteIgnoredSettings(next: Readonly<SlackConfig>): void {
    const ignored = changedSettings(this.config, next);
    const key = ignored.join(',');
    if (key === this.ignoredSettings) return;
    this.ignoredSettings = key;
    if (ignored.length > 0)
      this.logger.info({ settings: ignored }, 'slack settings changed; they apply after a restart');
  }

  /**
   * Socket Mode on a new app token. Connected: a second socket is opened with it (Slack allows
   * several per app and delivers each envelope to one of them), becomes the one in use, and only
   * then is the old one drained (the envelopes the agent is taking are acked on it) and closed;
   * whatever Slack sent the old one unacked, it redelivers on the new one. Not connected: the next
   * connect attempt uses the new token.
   */
  private async renewAppToken(appToken: string): Promise<void> {
    const previous = this.socket;
    if (previous === undefined) return;
    // A connect in flight is opening `previous`: let it settle so the two do not cross.
    await this.connection?.catch(() => {});
    const next = this.newSocket(appToken);
    if (!previous.connected || this.stopped) {
      this.socket = next;
      this.secrets.appToken = appToken;
      await previous.close();
      return;
    }
    try {
      await next.open();
    } catch (error) {
      throw this.appTokenError(error, appToken);
    }
    this.socket = next;
    this.secrets.appToken = appToken;
    if (this.stopped) {
      // stop() ran while the new socket opened; it closed only the old one.
      await next.close();
      return;
    }
    // The old socket may have dropped during the switch and scheduled a reconnect: the new one is up.
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.failures = 0;
    this.tracker.connected();
    await previous.close({ drain: true });
  }

  private appTokenError(error: unknown, appToken: string): SlackRenewError {
    const scrub = secretScrubber([appToken, this.secrets.appToken ?? '', this.secrets.botToken]);
    if (isBadConfigError(error)) {
      return new SlackRenewError(
        'slack_app_token_refused',
        'appToken',
        `Slack refused the new app token (${platformError(error)}); still connected with the previous one`,
      );
    }
    return new SlackRenewError(
      'slack_app_token_unverified',
      'appToken',
      `could not connect with the new app token (${scrub(message(error))}); still connected with the previous one`,
    );
  }

  private webClient(botToken: string): webApi.WebClient {
    return slackWebClient(botToken, {
      apiUrl: this.config.apiUrl,
      logger: this.libraryLogger,
      timeoutMs: this.requestTimeoutMs,
    });
  }

  private newSocket(appToken: string): SlackSocket {
    const socket: SlackSocket = new SlackSocket({
      appToken,
      apiUrl: this.config.apiUrl,
      requestTimeoutMs: this.requestTimeoutMs,
      logger: this.libraryLogger,
      onEnvelope: (envelope) => this.onEnvelope(envelope),
      onDown: () => this.onSocketDown(socket),
    });
    return socket;
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

  private connect(): Promise<void> {
    const attempt = this.connectOnce();
    this.connection = attempt;
    return attempt;
  }

  private async connectOnce(): Promise<void> {
    this.connecting = true;
    try {
      if (this.botUserId === undefined) {
        const result = await this.client.auth.test();
        if (typeof result.user_id !== 'string') throw new Error('auth.test returned no user_id');
        this.botUserId = result.user_id;
        this.logger.info({ botUserId: result.user_id, team: result.team_id }, 'slack bot identified');
      }
      if (this.stopped) return;
      const socket = this.socket;
      try {
        await socket?.open();
      } catch (error) {
        // An app token switch replaced (and closed) this socket while it opened: not an outage.
        if (socket !== this.socket) return;
        throw error;
      }
      if (socket !== this.socket) return;
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

  private onSocketDown(socket: SlackSocket): void {
    // A socket being replaced after an app token switch is no outage.
    if (socket !== this.socket) return;
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
