import type { FastifyPluginAsync } from 'fastify';
import type { ChannelsConfig } from './channels-config.js';

/**
 * The one seam every chat platform plugs into. An adapter turns platform events into
 * `ChannelEvent`s for the agent and delivers reply text back; it knows nothing of LLMs, memory,
 * identity or retries (the outbox retries, and fails over to another platform).
 */

export type ChannelName = 'http' | 'discord' | 'telegram' | 'slack';

/** Where a reply goes on one platform. Stored in the outbox, so it must stay plain JSON. */
export interface ReplyAddress {
  channel: ChannelName;
  /** Telegram chat id, Discord channel id (a DM channel too), Slack channel id. */
  conversation: string;
  /** Slack thread ts, or the platform message id to answer (Telegram reply, Discord reference). */
  thread?: string;
}

/** One inbound message, as an adapter hands it to the agent. */
export interface ChannelEvent {
  /** The platform's own id for this event (update id, message id, Slack event id), for dedupe. */
  eventId: string;
  /** The sender's id on the platform. */
  userId: string;
  /** The text, with the bot's own mention removed; slash commands as `/name args`. */
  text: string;
  address: ReplyAddress;
}

/** What the agent offers an adapter. */
export interface ChannelSink {
  /**
   * Accepts an event durably (it survives a crash from here on) and resolves; the reply comes
   * later through `send`. An adapter acknowledges the platform only after this resolves, so a
   * crash before it means the platform delivers the event again.
   */
  receive(event: ChannelEvent): Promise<void>;
}

export interface ChannelHealth {
  connected: boolean;
  /** Epoch ms when the current connection was made (absent while disconnected). */
  connectedSince?: number;
  /** Epoch ms of the last inbound event, if any. */
  lastEventAt?: number;
  /** Epoch ms of the last reply delivered, if any. */
  lastSendAt?: number;
  consecutiveSendFailures: number;
  lastError?: string;
  /**
   * With several servers, for a connection only one may hold: whether this node holds it
   * (`active`) or waits to take over (`standby`), and since when it holds it.
   */
  role?: 'active' | 'standby';
  roleSince?: number;
}

/** A command as platforms publish it (Telegram's menu, Discord's and Slack's slash commands). */
export interface PublishedCommand {
  name: string;
  summary: string;
}

export interface ChannelAdapter {
  readonly name: ChannelName;
  /**
   * Routes this adapter serves on the HTTP channel's server (webhook modes). Registered outside
   * the API's bearer auth and rate limit: each route must verify its platform's signature or
   * secret itself, in its own encapsulated plugin (which may parse raw bodies for that).
   */
  readonly webhook?: FastifyPluginAsync;
  /**
   * True when the platform allows this connection only once per bot (Telegram long polling, a
   * Discord gateway session, Slack Socket Mode): with several servers, only the holder of its
   * lease starts it. Webhook modes are not exclusive and run on every server.
   */
  readonly exclusiveConnection?: boolean;
  /**
   * Connects and starts taking events. Must not throw because the platform is down: it keeps
   * retrying with back-off in the background and reports its state through `health()`. Throws
   * only for what a retry cannot fix (bad configuration).
   */
  start(sink: ChannelSink, commands: readonly PublishedCommand[]): Promise<void>;
  /** Stops taking new events and disconnects. */
  stop(): Promise<void>;
  /**
   * Delivers one reply, split to the platform's message limit. Resolves only when every part
   * was accepted by the platform; throws `ChannelSendError` otherwise.
   */
  send(address: ReplyAddress, text: string, options?: SendOptions): Promise<void>;
  /** Shows that the agent is working on an answer (best effort, never throws). */
  typing?(address: ReplyAddress): Promise<void>;
  health(): ChannelHealth;
  /**
   * Takes this platform's rotated secrets (bot or app token, signing or webhook secret) from
   * its section of `channels`, without a restart: resolves once new sends use them and, if the
   * adapter was started, its connection runs on them. Other settings of the section are ignored
   * (they need a restart). No-op when none of its secrets changed.
   */
  renewSecrets?(channels: ChannelsConfig): Promise<void>;
}

/** What the outbox knows about a delivery, for platforms that can avoid posting a reply twice. */
export interface SendOptions {
  /** The outbox's id for this reply, the same on every attempt. */
  replyId?: string;
  /**
   * An earlier attempt was cut off by a crash, so some parts may already be posted. An adapter
   * that can look (Slack, through message metadata) posts only the parts not there yet.
   */
  mayRepeat?: boolean;
}

/** A failed delivery. The outbox retries it (no sooner than `retryAfterMs`) unless `permanent`. */
export class ChannelSendError extends Error {
  readonly retryAfterMs: number | undefined;
  readonly permanent: boolean;

  constructor(
    message: string,
    options: { retryAfterMs?: number; permanent?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChannelSendError';
    this.retryAfterMs = options.retryAfterMs;
    this.permanent = options.permanent ?? false;
  }
}

/** Tracks the health fields every adapter reports, so each adapter only calls the events. */
export class HealthTracker {
  private state: ChannelHealth = { connected: false, consecutiveSendFailures: 0 };

  constructor(private readonly now: () => number = Date.now) {}

  connected(): void {
    if (!this.state.connected) this.state.connectedSince = this.now();
    this.state.connected = true;
    delete this.state.lastError;
  }

  disconnected(error?: unknown): void {
    this.state.connected = false;
    delete this.state.connectedSince;
    if (error !== undefined) this.state.lastError = errorText(error);
  }

  event(): void {
    this.state.lastEventAt = this.now();
  }

  sent(): void {
    this.state.lastSendAt = this.now();
    this.state.consecutiveSendFailures = 0;
  }

  sendFailed(error: unknown): void {
    this.state.consecutiveSendFailures += 1;
    this.state.lastError = errorText(error);
  }

  snapshot(): ChannelHealth {
    return { ...this.state };
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}
