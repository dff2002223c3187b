import type { FastifyPluginAsync } from 'fastify';
import { Bot } from 'grammy';
import type { Logger } from 'pino';
import { LinkedAbort } from '../../core/linked-abort.js';
import { oneAtATime } from '../../core/one-at-a-time.js';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF, sleep } from '../backoff.js';
import {
  type ChannelAdapter,
  type ChannelHealth,
  ChannelSendError,
  type ChannelSink,
  HealthTracker,
  type PublishedCommand,
  type ReplyAddress,
} from '../channel-adapter.js';
import type { ChannelsConfig, TelegramConfig } from '../channels-config.js';
import { DEFAULT_SECRET_GRACE_MS, RotatingSecret } from '../rotating-secret.js';
import { asGrammySignal, type GrammySignal } from './abort-signals.js';
import { AckHoldback } from './ack-holdback.js';
import { type BotCommand, toBotCommands } from './bot-commands.js';
import { BotToken } from './bot-token.js';
import { connectionTransformer } from './connection-transformer.js';
import { type BotIdentity, parseInbound } from './inbound-update.js';
import { SendProgress } from './send-progress.js';
import { describeTelegramError, migratedChatId, toChannelSendError } from './telegram-errors.js';
import { telegramMessageParts } from './telegram-html.js';
import { telegramWebhookRoute } from './webhook-route.js';

export interface TelegramAdapterOptions {
  config: TelegramConfig;
  logger: Logger;
  /** Clock for health timestamps and the webhook secret's grace period. Default `Date.now`. */
  now?: () => number;
  /**
   * Back-off for reconnecting (a failed `getMe`/`getUpdates`, polling stopped by 401 or 409) and
   * for an update the agent did not accept. Default 1 s doubling to 30 s.
   */
  backoff?: BackoffOptions;
  /** Longest wait for one Bot API answer, on top of the long-poll timeout. Default 30 s. */
  requestTimeoutMs?: number;
  /** How long `stop()` waits for an update being handled to finish. Default 5 s. */
  stopGraceMs?: number;
  /**
   * Webhook mode: how long the secret a rotation replaced is still accepted, for the operator to
   * call `setWebhook` with the new one. Default 15 minutes.
   */
  secretGraceMs?: number;
}

/**
 * Telegram through grammy. Long polling by default (one poller per bot token), or a webhook route
 * on the HTTP channel's server when `mode` is `webhook`. In webhook mode the operator registers the
 * public URL with Telegram once (`setWebhook` with `url` and `secret_token` = `webhookSecret`);
 * the adapter never calls `setWebhook` or `deleteWebhook` then, so it cannot undo that.
 *
 * Acknowledgement: an update counts as handled only once `sink.receive` resolved. In webhook mode
 * the HTTP answer waits for it (500 otherwise, so Telegram sends the update again). In polling
 * mode, grammy's offset would acknowledge it anyway, so `AckHoldback` rewrites the offset; the
 * update comes back after a back-off, and the updates after it are held back until it is accepted,
 * so order is kept and nothing is lost or handled twice by this process.
 *
 * Secret rotation (`renewSecrets`): the token is read at every call (see BotToken), so the one
 * `Bot` and its polling state outlive a rotation; the webhook secret is a RotatingSecret.
 */
export class TelegramAdapter implements ChannelAdapter {
  readonly name = 'telegram' as const;
  readonly webhook?: FastifyPluginAsync;
  readonly exclusiveConnection: boolean;
  private readonly config: TelegramConfig;
  private readonly log: Logger;
  private readonly bot: Bot;
  private readonly token: BotToken;
  private readonly webhookSecret: RotatingSecret | undefined;
  private readonly tracker: HealthTracker;
  private readonly backoff: Required<BackoffOptions>;
  private readonly requestTimeoutMs: number;
  private readonly stopGraceMs: number;
  private readonly holdback = new AckHoldback();
  private readonly progress = new SendProgress();
  private readonly stopController = new AbortController();
  private sink: ChannelSink | undefined;
  private commands: BotCommand[] = [];
  private commandsPublished = false;
  private publishing = false;
  private polledSinceStart = false;
  private lastReportedError: string | undefined;
  private running: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** Rotations, one after the other. */
  private readonly renewOneAtATime = oneAtATime((config: TelegramConfig | undefined) =>
    this.takeSecrets(config),
  );
  /** Set while a token switch stops the poller: the poll loop starts again once it resolves. */
  private switchingToken: Promise<void> | undefined;
  /** Ends the back-off wait in progress, if any. */
  private wake: LinkedAbort | undefined;

  constructor(options: TelegramAdapterOptions) {
    const { config } = options;
    this.config = config;
    this.exclusiveConnection = config.mode === 'polling';
    this.log = options.logger.child({ channel: 'telegram' });
    this.tracker = new HealthTracker(options.now);
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.stopGraceMs = options.stopGraceMs ?? 5_000;
    if (this.backoff.initialMs < 1 || this.backoff.maxMs < this.backoff.initialMs)
      throw new RangeError(
        `backoff must have 1 <= initialMs <= maxMs, got ${this.backoff.initialMs} and ${this.backoff.maxMs}`,
      );

    // grammy's own client timeout (default 500 s) only backs up the per-call timeouts set here.
    this.token = new BotToken(config.botToken);
    this.bot = new Bot(config.botToken, {
      client: {
        apiRoot: config.apiRoot,
        timeoutSeconds: config.pollTimeoutSeconds + 60,
        buildUrl: this.token.buildUrl,
      },
    });
    const polling = config.mode === 'polling';
    this.bot.api.config.use(
      connectionTransformer({
        backoff: this.backoff,
        stopSignal: this.stopController.signal,
        requestTimeoutMs: this.requestTimeoutMs,
        onUp: (method) => this.markUp(method),
        onDown: (method, error) => this.markDown(method, error),
        ...(polling
          ? {
              capOffset: (offset: number) => this.holdback.capOffset(offset),
              onPolled: (ids: readonly number[]) => this.givenUpOn(this.holdback.observeBatch(ids)),
            }
          : {}),
      }),
    );
    this.bot.use(async (ctx) => this.handleUpdate(ctx.update, true));
    // Only reached by a bug in handleUpdate (it catches the sink's failures itself).
    this.bot.catch((error) => this.log.error({ err: error.error }, 'Telegram update handler failed'));

    if (config.mode === 'webhook') {
      if (config.webhookSecret === undefined)
        throw new RangeError('channels.telegram.webhookSecret is required in webhook mode');
      this.webhookSecret = new RotatingSecret(
        config.webhookSecret,
        options.secretGraceMs ?? DEFAULT_SECRET_GRACE_MS,
        options.now,
      );
      this.webhook = telegramWebhookRoute({
        path: config.webhookPath,
        secret: this.webhookSecret,
        handle: (update) => this.handleWebhookUpdate(update),
        onError: (error) =>
          this.log.warn({ err: error }, 'a webhook update was not accepted; Telegram will send it again'),
      });
    }
  }

  async start(sink: ChannelSink, commands: readonly PublishedCommand[]): Promise<void> {
    if (this.running !== undefined) return;
    this.sink = sink;
    const { commands: published, skipped } = toBotCommands(commands);
    if (skipped.length > 0)
      this.log.warn({ skipped }, 'commands Telegram cannot list (names must be 1-32 of a-z, 0-9, _)');
    this.commands = published;
    // In the background: start() must not wait for (or fail because of) Telegram being reachable.
    this.running = this.config.mode === 'polling' ? this.pollForever() : this.initForever();
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  async send(address: ReplyAddress, text: string): Promise<void> {
    let parts: string[];
    try {
      parts = telegramMessageParts(text);
    } catch (error) {
      throw this.sendFailed(
        new ChannelSendError('the reply cannot be split', { permanent: true, cause: error }),
      );
    }
    if (parts.length === 0)
      throw this.sendFailed(new ChannelSendError('the reply is empty', { permanent: true }));
    const key = this.progress.key(address, text);
    let chatId = toChatId(address.conversation);
    let done = this.progress.get(key);
    try {
      for (; done < parts.length; done++)
        chatId = await this.sendPart(chatId, parts[done] as string, done === 0 ? address.thread : undefined);
    } catch (error) {
      this.progress.record(key, done);
      const sendError = toChannelSendError(error, this.token.all);
      this.log.warn(
        { err: sendError.message, part: done + 1, parts: parts.length, permanent: sendError.permanent },
        'Telegram did not accept a reply',
      );
      throw this.sendFailed(sendError);
    }
    this.progress.done(key);
    this.tracker.sent();
  }

  async typing(address: ReplyAddress): Promise<void> {
    try {
      await this.bot.api.sendChatAction(toChatId(address.conversation), 'typing', {}, this.timeout());
    } catch (error) {
      this.log.debug({ err: describeTelegramError(error, this.token.all) }, 'typing indicator failed');
    }
  }

  health(): ChannelHealth {
    return this.tracker.snapshot();
  }

  /**
   * Takes a rotated `botToken` and `webhookSecret` (webhook mode); other settings need a restart.
   * Calls from here on use the new token. A running poller is moved to it: `bot.stop()` cuts short
   * the poll made with the old token and acknowledges what was handled (capped by AckHoldback, like
   * every poll), then the poll loop starts again at once from the same offset, since the `Bot`,
   * and with it the last update tried, is kept. So no update is lost or handed over twice.
   */
  renewSecrets(channels: ChannelsConfig): Promise<void> {
    return this.renewOneAtATime(channels.telegram);
  }

  private async takeSecrets(config: TelegramConfig | undefined): Promise<void> {
    if (config === undefined) return;
    const taken: string[] = [];
    // First: it throws for another bot's token, before anything changed.
    if (this.token.set(config.botToken)) taken.push('botToken');
    const secret = this.webhookSecret;
    if (
      secret !== undefined &&
      config.webhookSecret !== undefined &&
      config.webhookSecret !== secret.current
    ) {
      secret.set(config.webhookSecret);
      taken.push('webhookSecret');
    }
    if (taken.length === 0) return;
    this.log.info({ secrets: taken }, 'took rotated Telegram secrets');
    if (taken.includes('botToken')) await this.reconnect();
  }

  /** Moves the connection to the new token. A never-started adapter (a sender) has none. */
  private async reconnect(): Promise<void> {
    if (this.running === undefined || this.stopController.signal.aborted) return;
    // A back-off wait (after a 401 from a token revoked before the rotation, say) ends now.
    this.wake?.abort();
    // Not running: it is waiting, or between two runs, and its next start uses the new token.
    if (this.config.mode !== 'polling' || !this.bot.isRunning()) return;
    const stopped = this.bot
      .stop()
      .catch((error: unknown) =>
        this.log.debug(
          { err: describeTelegramError(error, this.token.all) },
          'acknowledgement before the token switch failed; the next poll makes it',
        ),
      );
    this.switchingToken = stopped;
    await stopped;
  }

  /** The polling supervisor: grammy's `bot.start()`, restarted with back-off whenever it ends. */
  private async pollForever(): Promise<void> {
    let attempt = 0;
    while (!this.stopController.signal.aborted) {
      this.polledSinceStart = false;
      try {
        await this.bot.start({
          timeout: this.config.pollTimeoutSeconds,
          drop_pending_updates: false,
          allowed_updates: ['message'],
        });
      } catch (error) {
        if (this.stopController.signal.aborted) break;
        // Setup failed with an API error (a 4xx on getMe), or polling ended on 401/409; or a token
        // switch stopped it during setup, which is no outage.
        if (this.switchingToken === undefined) this.markDown('polling', error);
      }
      if (this.stopController.signal.aborted) break;
      const switched = this.switchingToken;
      if (switched !== undefined) {
        // Not before bot.stop()'s acknowledging getUpdates is done: of two polls at once, Telegram
        // ends one with 409.
        this.switchingToken = undefined;
        await switched;
        this.log.debug('polling again, with the new token');
        attempt = 0;
        continue;
      }
      if (this.polledSinceStart) attempt = 0;
      const waitMs = backoffDelay(attempt++, this.backoff);
      this.log.debug({ waitMs }, 'restarting Telegram polling');
      await this.pause(waitMs);
    }
  }

  /** A back-off wait, ended early by stop() or by a token switch (the new token may work now). */
  private async pause(ms: number): Promise<void> {
    const wake = new LinkedAbort([this.stopController.signal]);
    this.wake = wake;
    await sleep(ms, wake.signal);
    wake.dispose();
    if (this.wake === wake) this.wake = undefined;
  }

  /** Webhook mode only needs the bot's identity (for mentions), then waits for requests. */
  private async initForever(): Promise<void> {
    for (let attempt = 0; !this.stopController.signal.aborted; attempt++) {
      try {
        await this.bot.init();
        return;
      } catch (error) {
        if (this.stopController.signal.aborted) return;
        this.markDown('getMe', error);
      }
      await this.pause(backoffDelay(attempt, this.backoff));
    }
  }

  private async shutdown(): Promise<void> {
    this.stopController.abort();
    if (this.bot.isRunning()) {
      try {
        // Cancels the pending getUpdates and acknowledges what was handled (offset capped).
        await this.bot.stop();
      } catch (error) {
        this.log.debug(
          { err: describeTelegramError(error, this.token.all) },
          'final acknowledgement failed; Telegram sends those updates again',
        );
      }
    }
    if (this.running !== undefined) {
      const grace = new AbortController();
      await Promise.race([this.running, sleep(this.stopGraceMs, grace.signal)]);
      grace.abort();
    }
    this.tracker.disconnected();
  }

  private async handleWebhookUpdate(update: unknown): Promise<'handled' | 'not_ready'> {
    if (!this.bot.isInited() || this.sink === undefined || this.stopController.signal.aborted)
      return 'not_ready';
    await this.handleUpdate(update, false);
    return 'handled';
  }

  /**
   * Hands one update to the sink. Webhook mode: a failure propagates (the route answers 500).
   * Polling: a failure is held back (see AckHoldback) and waited out here, so the poll loop
   * does not spin on an agent that is down.
   */
  private async handleUpdate(update: unknown, polling: boolean): Promise<void> {
    const result = parseInbound(update, this.identity());
    if (result.kind === 'invalid') {
      this.log.warn({ issues: result.issues }, 'skipping an update that does not have the Bot API shape');
      return;
    }
    if (polling && this.holdback.shouldSkip(result.updateId)) return;
    if (result.kind === 'ignored') {
      this.log.debug({ updateId: result.updateId, reason: result.reason }, 'update ignored');
      return;
    }
    const sink = this.sink;
    if (sink === undefined) throw new Error('Telegram update before start()');
    const { event, updateId } = result;
    this.tracker.event();
    if (!polling) {
      await sink.receive(event);
      return;
    }
    this.holdback.begin(updateId);
    try {
      await sink.receive(event);
      this.holdback.succeeded(updateId);
    } catch (error) {
      const failures = this.holdback.failed(updateId);
      const waitMs = backoffDelay(failures - 1, this.backoff);
      this.log.warn(
        { err: error, eventId: event.eventId, failures, retryInMs: waitMs },
        'the agent did not accept a Telegram message; it stays unacknowledged and comes again',
      );
      await sleep(waitMs, this.stopController.signal);
    }
  }

  private identity(): BotIdentity {
    const me = this.bot.botInfo;
    return { id: me.id, username: me.username };
  }

  private async sendPart(chatId: number | string, html: string, replyTo: string | undefined) {
    const other = {
      parse_mode: 'HTML' as const,
      ...(replyTo !== undefined && /^\d+$/.test(replyTo)
        ? { reply_parameters: { message_id: Number(replyTo), allow_sending_without_reply: true } }
        : {}),
    };
    try {
      await this.bot.api.sendMessage(chatId, html, other, this.timeout());
      return chatId;
    } catch (error) {
      const migrated = migratedChatId(error);
      if (migrated === undefined) throw error;
      // The group became a supergroup; its old id no longer works, the new one is in the error.
      this.log.info({ from: chatId, to: migrated }, 'Telegram chat migrated; sending to the new id');
      await this.bot.api.sendMessage(migrated, html, other, this.timeout());
      return migrated;
    }
  }

  private timeout(): GrammySignal {
    return asGrammySignal(AbortSignal.timeout(this.requestTimeoutMs));
  }

  private sendFailed(error: ChannelSendError): ChannelSendError {
    this.tracker.sendFailed(error);
    return error;
  }

  private markUp(method: string): void {
    // bot.stop()'s last getUpdates answers after the stop: the adapter is not connected any more.
    if (this.stopController.signal.aborted) return;
    if (method === 'getUpdates') this.polledSinceStart = true;
    const wasConnected = this.tracker.snapshot().connected;
    this.tracker.connected();
    this.lastReportedError = undefined;
    if (wasConnected) return;
    this.log.info({ via: method }, 'connected to the Telegram Bot API');
    // Published at the first connection, and again after a reconnect if that failed.
    if (!this.commandsPublished) void this.publishCommands();
  }

  private markDown(method: string, error: unknown): void {
    // A string is an error answer's description: scrubbed too, a server may echo the URL.
    const text = describeTelegramError(error, this.token.all);
    this.tracker.disconnected(text);
    // Once per distinct error, not once per retry of an outage.
    if (text !== this.lastReportedError)
      this.log.warn({ method, err: text }, 'Telegram Bot API unreachable; retrying with back-off');
    this.lastReportedError = text;
  }

  private async publishCommands(): Promise<void> {
    if (this.publishing || this.commands.length === 0) return;
    this.publishing = true;
    try {
      await this.bot.api.setMyCommands(this.commands, {}, this.timeout());
      this.commandsPublished = true;
      this.log.info({ count: this.commands.length }, 'Telegram command menu published');
    } catch (error) {
      this.log.warn(
        { err: describeTelegramError(error, this.token.all) },
        'could not publish the Telegram command menu; trying again after the next reconnect',
      );
    } finally {
      this.publishing = false;
    }
  }

  private givenUpOn(updateId: number | undefined): void {
    if (updateId !== undefined)
      this.log.error({ updateId }, 'Telegram no longer has an update the agent did not accept; it is lost');
  }
}

/** Chat ids are numbers on the wire; a `@channel` username stays a string. */
function toChatId(conversation: string): number | string {
  return /^-?\d+$/.test(conversation) ? Number(conversation) : conversation;
}
