import { setTimeout as delay } from 'node:timers/promises';

export interface BackoffOptions {
  /** First delay. Default 1,000 ms. */
  initialMs?: number;
  /** Longest delay. Default 30,000 ms. */
  maxMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 1_000, maxMs: 30_000 };

/**
 * The delay before retry number `attempt` (0-based): doubling from `initialMs` up to `maxMs`, with
 * the upper half jittered so that several agents cut off together do not reconnect in lockstep.
 */
export function backoffDelay(attempt: number, options: Required<BackoffOptions>): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Waits `ms`, or less if `signal` aborts first; never rejects, so loops just re-check their flag. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal === undefined ? undefined : { signal });
  } catch {
    // Aborted: the caller checks why.
  }
}
