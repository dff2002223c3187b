import { backoffDelay } from '../backoff.js';

/** Delays for what the adapter retries itself: logging in, and handing an event to the agent. */
export interface DiscordBackoff {
  /** First delay after a failure. Default 1000 ms. */
  initialMs: number;
  /** Delays double up to this cap. Default 30 000 ms. */
  maxMs: number;
  /**
   * Attempts at handing one inbound event to the sink before it is logged as lost. Discord does
   * not redeliver a gateway event, so this (with the delays) is the window the agent's durable
   * store may be down without losing a message. Default 6 (about 31 s with the defaults).
   */
  receiveAttempts: number;
}

export const DEFAULT_DISCORD_BACKOFF: Readonly<DiscordBackoff> = Object.freeze({
  initialMs: 1000,
  maxMs: 30_000,
  receiveAttempts: 6,
});

export function resolveBackoff(partial: Partial<DiscordBackoff> = {}): Readonly<DiscordBackoff> {
  const backoff = { ...DEFAULT_DISCORD_BACKOFF, ...partial };
  for (const key of ['initialMs', 'maxMs', 'receiveAttempts'] as const) {
    const value = backoff[key];
    if (!Number.isFinite(value) || value < 1) {
      throw new RangeError(`discord backoff.${key} must be a number >= 1, got ${String(value)}`);
    }
  }
  if (backoff.maxMs < backoff.initialMs) {
    throw new RangeError(
      `discord backoff.maxMs (${backoff.maxMs}) must be >= initialMs (${backoff.initialMs})`,
    );
  }
  return Object.freeze(backoff);
}

/** The delay after `failures` consecutive failures (1 = the first), jittered like every adapter's. */
export function discordRetryDelay(backoff: DiscordBackoff, failures: number): number {
  return backoffDelay(Math.max(0, failures - 1), backoff);
}
