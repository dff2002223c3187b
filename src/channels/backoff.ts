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
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { initialMs, maxMs } = { ...DEFAULT_BACKOFF, ...options };
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Waits `ms`, or less if `signal` aborts first: true when the full time passed, false when
 * aborted. Never rejects, so reconnect loops just check the result (or their own flag).
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, undefined, signal === undefined ? undefined : { signal });
    return true;
  } catch {
    return false;
  }
}
