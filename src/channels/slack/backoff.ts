export interface BackoffOptions {
  /** First delay. Default 1 s. */
  baseMs?: number;
  /** Longest delay. Default 30 s. */
  maxMs?: number;
}

/**
 * Delay before retry number `attempt` (0 = first): doubling from `baseMs` up to `maxMs`, with up to
 * half of it random so several agents reconnecting after one outage do not call Slack in step.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
) {
  const base = options.baseMs ?? 1_000;
  const max = options.maxMs ?? 30_000;
  const full = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.round(full / 2 + (full / 2) * random());
}
