import {
  type ChatInputCommandInteraction,
  Client,
  Events,
  GatewayIntentBits,
  type Interaction,
  type Message,
  MessageFlags,
  Partials,
  type RateLimitData,
  REST,
  type RESTOptions,
  Routes,
} from 'discord.js';
import type { Logger } from 'pino';
import { secretScrubber } from '../../core/logger.js';
import { sleep } from '../backoff.js';
import {
  type ChannelAdapter,
  type ChannelEvent,
  type ChannelHealth,
  ChannelSendError,
  type ChannelSink,
  HealthTracker,
  type PublishedCommand,
  type ReplyAddress,
} from '../channel-adapter.js';
import type { ChannelsConfig, DiscordConfig } from '../channels-config.js';
import { type DiscordBackoff, discordRetryDelay, resolveBackoff } from './discord-backoff.js';
import { catchUpMissedMessages, type DiscordCursorStore } from './discord-catch-up.js';
import { commandPayload } from './discord-commands.js';
import { HandedIds } from './discord-handed-ids.js';
import {
  commandText,
  type InboundMessage,
  ignoreReason,
  inboundCommandSchema,
  inboundMessageSchema,
  issuesText,
  messageEvent,
} from './discord-inbound.js';
import { replyMessages } from './discord-outgoing.js';
import { toSendError } from './discord-send-error.js';

export interface DiscordAdapterOptions {
  config: DiscordConfig;
  logger: Logger;
  /** Clock for the health timestamps. Default `Date.now`. */
  now?: () => number;
  /** Retry delays for logging in and for handing events to the agent. Defaults: `DEFAULT_DISCORD_BACKOFF`. */
  backoff?: Partial<DiscordBackoff>;
  /**
   * The longest rate-limit wait a request sits out inside the REST client (e.g. the parts of a
   * long reply meeting the per-channel limit). A longer one fails the send at once with
   * `retryAfterMs`, so the outbox, not a blocked call, does the waiting. Default 2000 ms.
   */
  maxRateLimitWaitMs?: number;
  /** REST request timeout. Default 15 000 ms. */
  requestTimeoutMs?: number;
  /**
   * Where each channel's last accepted message is kept (Redis, shared by the servers). With it, a
   * fresh gateway session first reads back what was posted while no session was connected.
   */
  cursors?: DiscordCursorStore;
}

/** What a slash command shows at once: Discord voids an interaction not answered within 3 s. */
export const ACK_TEXT = 'Working on it…';
/** What that message becomes when the agent could not take the command. */
export const NOT_TAKEN_TEXT = 'Sorry, I could not take that command just now. Please try again in a minute.';

/**
 * Discord through discord.js: the gateway for messages and slash commands, the REST API for
 * replies.
 *
 * - Direct messages are always for the agent; in servers only messages that mention the bot
 *   (the mention is stripped). Bots, itself included, are ignored.
 * - Slash commands are acknowledged at once with a visible "Working on it…" message (Discord
 *   voids an interaction not answered within 3 s, and handing the event to the agent may take
 *   longer while its store recovers). The answer then comes like any reply: a channel message
 *   replying to that acknowledgement. A deferred reply would need the interaction token, which
 *   expires after 15 minutes and cannot travel through the outbox to another instance.
 * - Discord never redelivers a gateway event, so an event the sink refuses is retried with
 *   back-off (`backoff.receiveAttempts`); it is lost, and logged as such, only if the agent's
 *   durable store stays down for that whole window (or the adapter stops meanwhile).
 * - Replies go through the adapter's own REST client, not the gateway client: they work while
 *   the gateway reconnects, and rate-limit state survives a re-login.
 * - A rotated bot token (`renewSecrets`) is taken without a restart: the REST client switches at
 *   once, and the gateway session is closed and a new one identified with the new token. What
 *   is posted in between is read back from the cursors, as after any fresh session.
 */
export class DiscordAdapter implements ChannelAdapter {
  readonly name = 'discord' as const;
  /** One gateway session per bot token (no sharding here). */
  readonly exclusiveConnection = true;

  private readonly config: DiscordConfig;
  /** The bot token in use: the configured one until `renewSecrets` brings another. */
  private token: string;
  /** Every token this adapter held, masked in whatever it logs or reports. */
  private readonly heldTokens = new Set<string>();
  /** Messages handed on, so a read-back does not hand one on twice. */
  private readonly handed = new HandedIds();
  private readonly logger: Logger;
  private readonly tracker: HealthTracker;
  private readonly backoff: Readonly<DiscordBackoff>;
  private readonly restOptions: Partial<RESTOptions>;
  private readonly rest: REST;
  private readonly stopController = new AbortController();
  private readonly inflight = new Set<Promise<unknown>>();
  private client: Client | undefined;
  private sink: ChannelSink | undefined;
  private commands: readonly PublishedCommand[] = [];
  /** Scopes (`global` or a guild id) whose commands are registered; the rest are retried on reconnect. */
  private readonly registeredScopes = new Set<string>();
  private registering = false;
  /** Bumped whenever a login loop is superseded (re-login, stop), so a stale one bows out. */
  private generation = 0;
  private started = false;
  private stopping: Promise<void> | undefined;
  private readonly cursors: DiscordCursorStore | undefined;
  private readingBack = false;
  private readBackAgain = false;
  private readBackTimer: NodeJS.Timeout | undefined;

  constructor(options: DiscordAdapterOptions) {
    this.config = options.config;
    this.token = options.config.botToken;
    this.heldTokens.add(this.token);
    this.cursors = options.cursors;
    this.logger = options.logger.child({ channel: 'discord' });
    this.tracker = new HealthTracker(options.now);
    this.backoff = resolveBackoff(options.backoff);
    const maxWait = options.maxRateLimitWaitMs ?? 2000;
    if (!Number.isFinite(maxWait) || maxWait < 0) {
      throw new RangeError(`discord maxRateLimitWaitMs must be a number >= 0, got ${String(maxWait)}`);
    }
    this.restOptions = {
      api: this.config.apiRoot,
      // The outbox owns retries (with failover); a retry in here would only hide the failure.
      retries: 0,
      timeout: options.requestTimeoutMs ?? 15_000,
      // Without this @discordjs/rest sleeps out any rate limit, minutes for a global one.
      rejectOnRateLimit: (limit: RateLimitData) => Math.max(limit.retryAfter, limit.timeToReset) > maxWait,
    };
    this.rest = new REST(this.restOptions).setToken(this.token);
    this.rest.on('rateLimited', (limit) =>
      this.logger.debug(
        { route: limit.route, retryAfterMs: limit.retryAfter, global: limit.global },
        'discord rate limit',
      ),
    );
  }

  async start(sink: ChannelSink, commands: readonly PublishedCommand[]): Promise<void> {
    if (this.stopping) throw new Error('the discord adapter was stopped; create a new one');
    if (this.started) throw new Error('the discord adapter is already started');
    this.started = true;
    this.sink = sink;
    this.commands = commands;
    // In the background: Discord being down must not hold up (or fail) the agent's start.
    this.runLogin(0);
  }

  async stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  health(): ChannelHealth {
    return this.tracker.snapshot();
  }

  async send(address: ReplyAddress, text: string): Promise<void> {
    if (address.channel !== 'discord') {
      throw new ChannelSendError(`not a discord address (channel ${address.channel})`, { permanent: true });
    }
    if (!/^\d{1,20}$/.test(address.conversation)) {
      throw new ChannelSendError(`not a discord channel id: ${address.conversation}`, { permanent: true });
    }
    const messages = replyMessages(address, text);
    if (messages.length === 0)
      throw new ChannelSendError('empty reply: nothing to send', { permanent: true });
    const route = Routes.channelMessages(address.conversation);
    let delivered = 0;
    try {
      for (const body of messages) {
        await this.rest.post(route, { body });
        delivered += 1;
      }
    } catch (error) {
      const failure = toSendError(error);
      this.tracker.sendFailed(new Error(this.errorText(failure)));
      this.logger.warn(
        {
          conversation: address.conversation,
          parts: messages.length,
          delivered,
          permanent: failure.permanent,
          retryAfterMs: failure.retryAfterMs,
          err: this.errorText(failure),
        },
        'discord send failed',
      );
      throw failure;
    }
    this.tracker.sent();
  }

  async typing(address: ReplyAddress): Promise<void> {
    if (address.channel !== 'discord') return;
    try {
      await this.rest.post(Routes.channelTyping(address.conversation));
    } catch (error) {
      // Best effort: a missing indicator is not worth a retry or a health mark.
      this.logger.debug(
        { conversation: address.conversation, err: this.errorText(error) },
        'discord typing failed',
      );
    }
  }

  /**
   * Takes a rotated `botToken` from `channels.discord`: REST calls use it from now on and, once
   * started, the gateway session moves to it. Resolves when the old session is closed and the
   * login with the new token has begun; connecting goes on in the background with the usual
   * back-off, so a Discord outage neither blocks nor fails the renewal. Other settings of the
   * section need a restart and are ignored; an unchanged token is a no-op.
   */
  async renewSecrets(channels: ChannelsConfig): Promise<void> {
    const token = channels.discord?.botToken;
    if (token === undefined || token === this.token) return;
    this.token = token;
    this.heldTokens.add(token);
    // Requests already sent keep the old token; one refused for it (401) is retried by the outbox.
    this.rest.setToken(token);
    const reconnect = this.started && this.stopping === undefined;
    this.logger.info({ reconnect }, 'discord bot token renewed');
    if (reconnect) await this.moveSession();
  }

  // ------------------------------------------------------------------ connection

  /**
   * Closes the gateway session and identifies a new one with the current token. A session
   * cannot change its token (Discord closes a reset token's sessions with 4004), so this is a
   * fresh IDENTIFY, not a RESUME; its READY reads back from the cursors what the switch missed.
   */
  private async moveSession(): Promise<void> {
    // Supersedes a login loop in progress (it may be backing off on the revoked token).
    const generation = ++this.generation;
    const previous = this.client;
    // From here its events are stale: what it still delivers is read back by the new session.
    this.client = undefined;
    this.tracker.disconnected();
    const closed = this.closeClient(previous);
    this.track(closed);
    await closed;
    // A later renewal or stop() took over meanwhile.
    if (generation !== this.generation || this.stopping) return;
    this.runLogin(0);
  }

  /** Destroys a client, bounded: see DESTROY_TIMEOUT_MS. */
  private async closeClient(client: Client | undefined): Promise<void> {
    if (client === undefined) return;
    try {
      // Bounded: on Node 24, destroying a client whose gateway socket is still opening can wait
      // forever, and a stop that never returns would outlast PM2's kill timeout.
      const destroyed = client.destroy().then(() => true);
      if (!(await Promise.race([destroyed, sleep(DESTROY_TIMEOUT_MS).then(() => false)]))) {
        this.logger.warn(
          { timeoutMs: DESTROY_TIMEOUT_MS },
          'discord client did not close in time; leaving it',
        );
      }
    } catch (error) {
      this.logger.warn({ err: this.errorText(error) }, 'discord client destroy failed');
    }
  }

  /** Starts a login loop after `delayMs`, superseding any earlier one. */
  private runLogin(delayMs: number): void {
    const generation = ++this.generation;
    // Not tracked for stop(): login() can stay pending for good once its client is destroyed
    // (discord.js waits for a READY that never comes), and stop() must not wait on it.
    this.loginLoop(generation, delayMs).catch((error: unknown) =>
      this.logger.error({ err: this.errorText(error) }, 'discord login loop failed'),
    );
  }

  private async loginLoop(generation: number, delayMs: number): Promise<void> {
    const signal = this.stopController.signal;
    if (delayMs > 0 && !(await sleep(delayMs, signal))) return;
    for (let failures = 0; generation === this.generation; ) {
      // A fresh client per attempt: login() destroys the client when it fails, and a destroyed
      // client keeps its dead shard manager.
      const client = this.createClient();
      this.client = client;
      try {
        // Read at each attempt: a renewal during the back-off applies to the next one.
        await client.login(this.token);
        if (generation !== this.generation) await client.destroy();
        return;
      } catch (error) {
        if (generation !== this.generation) return;
        failures += 1;
        const retryInMs = discordRetryDelay(this.backoff, failures);
        this.tracker.disconnected(new Error(this.errorText(error)));
        this.logger.warn(
          { err: this.errorText(error), attempt: failures, retryInMs },
          'discord login failed; retrying',
        );
        if (!(await sleep(retryInMs, signal))) return;
      }
    }
  }

  private createClient(): Client {
    const client = new Client({
      intents: [
        GatewayIntentBits.Guilds,
        GatewayIntentBits.GuildMessages,
        // Privileged: without it (enable it in the Developer Portal) message content is empty.
        GatewayIntentBits.MessageContent,
        GatewayIntentBits.DirectMessages,
      ],
      // DM channels are never in the cache at first; without this their messages are dropped.
      partials: [Partials.Channel],
      rest: this.restOptions,
    });
    const current = () => client === this.client && this.stopping === undefined;
    client.on(Events.ShardReady, () => current() && this.onConnected(client, 'ready'));
    client.on(
      Events.ShardResume,
      (_shard, replayed) => current() && this.onConnected(client, 'resumed', replayed),
    );
    client.on(Events.ShardReconnecting, () => {
      // discord.js reconnects (resuming when it can) on its own; health just follows it.
      if (current()) this.tracker.disconnected(new Error('discord gateway connection lost; reconnecting'));
    });
    client.on(Events.ShardDisconnect, (event) => {
      if (!current()) return;
      // Only for close codes discord.js gives up on (auth failed, disallowed intents, ...):
      // start over with a new login after back-off, in case the cause is fixed meanwhile.
      const error = new Error(
        `discord gateway closed with code ${event.code} and will not reconnect by itself`,
      );
      this.tracker.disconnected(error);
      this.logger.error({ code: event.code }, error.message);
      void client.destroy().catch(() => undefined);
      this.runLogin(this.backoff.maxMs);
    });
    client.on(Events.ShardError, (error) =>
      this.logger.warn({ err: this.errorText(error) }, 'discord gateway error'),
    );
    // An 'error' event without a listener would crash the process.
    client.on(Events.Error, (error) =>
      this.logger.error({ err: this.errorText(error) }, 'discord client error'),
    );
    client.on(Events.MessageCreate, (message) => {
      if (current()) this.track(this.onMessage(client, message));
    });
    client.on(Events.InteractionCreate, (interaction) => {
      if (current()) this.track(this.onInteraction(interaction));
    });
    if (this.logger.isLevelEnabled('trace')) {
      client.on(Events.Debug, (line) => this.logger.trace({ discord: line }, 'discord.js debug'));
    }
    return client;
  }

  private onConnected(client: Client, how: 'ready' | 'resumed', replayed?: number): void {
    this.tracker.connected();
    this.logger.info({ how, replayed, user: client.user?.tag }, 'discord gateway connected');
    // A resumed session gets what it missed from Discord; a new one reads it back over REST.
    if (how === 'ready') this.readBack();
    if (this.registeredScopes.size < this.commandScopes().length) this.track(this.registerCommands(client));
  }

  /**
   * Reads back, over REST, each recently active channel's messages after its cursor: what was
   * posted while no session of this bot was connected, or what the agent could not accept.
   */
  private readBack(): void {
    const botId = this.client?.user?.id;
    if (!this.cursors || botId === undefined || this.stopping) return;
    if (this.readingBack) {
      this.readBackAgain = true;
      return;
    }
    this.readingBack = true;
    this.track(
      catchUpMissedMessages({
        rest: this.rest,
        cursors: this.cursors,
        botId,
        deliver: (event, message) => this.accept(event, message),
        logger: this.logger,
      })
        .catch((error: unknown) => {
          this.logger.warn({ err: this.errorText(error) }, 'discord read-back failed; trying again later');
          this.readBackLater();
        })
        .finally(() => {
          this.readingBack = false;
          if (this.readBackAgain) {
            this.readBackAgain = false;
            this.readBack();
          }
        }),
    );
  }

  private readBackLater(): void {
    if (!this.cursors || this.readBackTimer || this.stopping) return;
    this.readBackTimer = setTimeout(() => {
      this.readBackTimer = undefined;
      this.readBack();
    }, READ_BACK_RETRY_MS);
    this.readBackTimer.unref();
  }

  private commandScopes(): string[] {
    return this.config.guildIds.length > 0 ? [...this.config.guildIds] : ['global'];
  }

  /** PUTs the command list to each scope not yet done; a failure waits for the next (re)connect. */
  private async registerCommands(client: Client): Promise<void> {
    if (this.registering) return;
    const applicationId = client.application?.id ?? client.user?.id;
    if (applicationId === undefined) return;
    this.registering = true;
    try {
      const { body, skipped } = commandPayload(this.commands);
      for (const skip of skipped) this.logger.warn(skip, 'discord slash command left out');
      for (const scope of this.commandScopes()) {
        if (this.registeredScopes.has(scope)) continue;
        const route =
          scope === 'global'
            ? Routes.applicationCommands(applicationId)
            : Routes.applicationGuildCommands(applicationId, scope);
        try {
          await this.rest.put(route, { body });
          this.registeredScopes.add(scope);
          this.logger.info({ scope, commands: body.length }, 'discord slash commands registered');
        } catch (error) {
          this.logger.warn(
            { scope, err: this.errorText(error) },
            'discord slash command registration failed; retrying on the next reconnect',
          );
        }
      }
    } finally {
      this.registering = false;
    }
  }

  // ------------------------------------------------------------------ inbound

  private async onMessage(client: Client, message: Message): Promise<void> {
    const botId = client.user?.id;
    if (botId === undefined) return;
    const parsed = inboundMessageSchema.safeParse({
      id: message.id,
      channelId: message.channelId,
      guildId: message.guildId,
      authorId: message.author?.id,
      authorIsBot: message.author?.bot,
      type: message.type,
      content: message.content,
      mentionsBot: message.mentions?.users?.has(botId) ?? false,
    });
    if (!parsed.success) {
      this.logger.warn(
        { messageId: message.id, issues: issuesText(parsed.error) },
        'discord message skipped: unexpected shape',
      );
      return;
    }
    const reason = ignoreReason(parsed.data);
    if (reason !== undefined) {
      this.logger.debug({ messageId: parsed.data.id, reason }, 'discord message ignored');
      return;
    }
    const event = messageEvent(parsed.data, botId);
    if (event.text.length === 0) {
      this.logger.debug({ messageId: event.eventId }, 'discord message ignored: no text');
      return;
    }
    await this.accept(event, parsed.data);
  }

  /** Hands a message's event to the agent and, once accepted, moves its channel's cursor past it. */
  private async accept(event: ChannelEvent, message: InboundMessage): Promise<boolean> {
    if (!this.handed.claim(message.id)) {
      this.logger.debug({ messageId: message.id }, 'discord message already handed on');
      return false;
    }
    if (!(await this.deliver(event))) {
      // Discord will not send it again; a read-back from the cursor will find it once the agent
      // accepts events again (Redis back, say).
      this.handed.release(message.id);
      this.readBackLater();
      return false;
    }
    await this.cursors
      ?.advance(message.channelId, message.id, message.guildId)
      .catch((error: unknown) =>
        this.logger.warn({ messageId: message.id, err: this.errorText(error) }, 'discord cursor not saved'),
      );
    return true;
  }

  private async onInteraction(interaction: Interaction): Promise<void> {
    if (!interaction.isChatInputCommand()) return;
    const parsed = inboundCommandSchema.safeParse({
      id: interaction.id,
      commandName: interaction.commandName,
      channelId: interaction.channelId,
      userId: interaction.user?.id,
      options: interaction.options.data.map((option) => ({ name: option.name, value: option.value })),
    });
    if (!parsed.success) {
      this.logger.warn(
        { interactionId: interaction.id, issues: issuesText(parsed.error) },
        'discord command skipped: unexpected shape',
      );
      await this.answer(interaction, 'Sorry, I could not read that command.');
      return;
    }
    const thread = await this.acknowledge(interaction);
    const event: ChannelEvent = {
      eventId: parsed.data.id,
      userId: parsed.data.userId,
      text: commandText(parsed.data),
      address: {
        channel: 'discord',
        conversation: parsed.data.channelId,
        ...(thread !== undefined ? { thread } : {}),
      },
    };
    if (!(await this.deliver(event))) {
      await interaction.editReply({ content: NOT_TAKEN_TEXT }).catch((error: unknown) => {
        this.logger.debug(
          { interactionId: interaction.id, err: this.errorText(error) },
          'discord editReply failed',
        );
      });
    }
  }

  /**
   * Answers the interaction before anything else (Discord's 3 s limit) and returns the id of that
   * message, which the agent's answer will reply to.
   */
  private async acknowledge(interaction: ChatInputCommandInteraction): Promise<string | undefined> {
    try {
      const response = await interaction.reply({ content: ACK_TEXT, withResponse: true });
      return response.resource?.message?.id ?? response.interaction.responseMessageId ?? undefined;
    } catch (error) {
      // Late or refused: Discord shows "did not respond", but the answer still comes as a channel message.
      this.logger.warn(
        { interactionId: interaction.id, err: this.errorText(error) },
        'discord interaction not acknowledged',
      );
      return undefined;
    }
  }

  private async answer(interaction: ChatInputCommandInteraction, content: string): Promise<void> {
    await interaction.reply({ content, flags: MessageFlags.Ephemeral }).catch((error: unknown) => {
      this.logger.debug(
        { interactionId: interaction.id, err: this.errorText(error) },
        'discord reply failed',
      );
    });
  }

  /** Hands an event to the agent, retrying with back-off; false when it was lost. */
  private async deliver(event: ChannelEvent): Promise<boolean> {
    const sink = this.sink;
    if (sink === undefined) return false;
    this.tracker.event();
    const where = { eventId: event.eventId, userId: event.userId, conversation: event.address.conversation };
    for (let attempt = 1; ; attempt += 1) {
      try {
        await sink.receive(event);
        return true;
      } catch (error) {
        const out = attempt >= this.backoff.receiveAttempts;
        const retryInMs = discordRetryDelay(this.backoff, attempt);
        if (!out) {
          this.logger.warn(
            { ...where, attempt, retryInMs, err: this.errorText(error) },
            'agent did not accept a discord event; retrying',
          );
        }
        if (out || !(await sleep(retryInMs, this.stopController.signal))) {
          // Discord will not send it again: this is the message lost.
          this.logger.error(
            {
              ...where,
              attempts: attempt,
              err: this.errorText(error),
              stopping: this.stopping !== undefined,
            },
            'discord event lost: the agent did not accept it',
          );
          return false;
        }
      }
    }
  }

  // ------------------------------------------------------------------ lifecycle

  /** An error's text with every token this adapter held masked. */
  private errorText(error: unknown): string {
    return secretScrubber([...this.heldTokens])(error instanceof Error ? error.message : String(error));
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) =>
      this.logger.error({ err: this.errorText(error) }, 'discord adapter task failed'),
    );
    this.inflight.add(tracked);
    void tracked.finally(() => this.inflight.delete(tracked));
  }

  private async shutdown(): Promise<void> {
    this.generation += 1;
    clearTimeout(this.readBackTimer);
    this.stopController.abort();
    const client = this.client;
    this.client = undefined;
    await this.closeClient(client);
    // Events already in hand finish their current hand-off (retry delays end at once).
    await Promise.allSettled([...this.inflight]);
    this.rest.clearHashSweeper();
    this.rest.clearHandlerSweeper();
    this.tracker.disconnected();
  }
}

/** After an event the agent did not accept, read the channels back this much later. */
const READ_BACK_RETRY_MS = 10_000;

/** How long stop() waits for discord.js to close its gateway connection. */
const DESTROY_TIMEOUT_MS = 2000;
