/** Load generation: the benches' knobs, their keep-alive HTTP client and the open (clock-driven) loop. */
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { percentile } from './stats.js';

/** A positive integer from the environment variable `name`, or `fallback` when it is unset or empty. */
export function intEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}

/**
 * An undici dispatcher with up to `connections` kept-alive connections, one request at a time on
 * each. With `requestTimeoutMs`, no single request may hang a run: undici gives up on it after
 * that long (headers, then body).
 */
export function keepAliveAgent(connections: number, requestTimeoutMs?: number): Agent {
  return new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    ...(requestTimeoutMs === undefined
      ? {}
      : { headersTimeout: requestTimeoutMs, bodyTimeout: requestTimeoutMs }),
  });
}

export interface OpenResult {
  p50: number;
  p99: number;
  max: number;
  sent: number;
  errors: number;
  firstError?: string;
  /** How far the sender itself fell behind its schedule: a load generator health check. */
  maxSendLagMs: number;
}

/**
 * Sends `rate` requests a second by the clock, whatever the replies do, for `warmupS` then
 * `measureS` seconds. Latency is measured from the scheduled send time, so a stall counts against
 * every request it delays (no coordinated omission). `send(index)` sends request number `index`
 * and resolves with undefined when it was answered correctly, else with the problem.
 */
export async function openLoop(
  send: (index: number) => Promise<string | undefined>,
  rate: number,
  warmupS: number,
  measureS: number,
): Promise<OpenResult> {
  const interval = 1000 / rate;
  const warmupCount = Math.round(warmupS * rate);
  const total = warmupCount + Math.round(measureS * rate);
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let maxSendLagMs = 0;
  const start = performance.now() + 5;
  let index = 0;

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (index < total && start + index * interval <= now) {
        const scheduled = start + index * interval;
        const measured = index >= warmupCount;
        if (measured) maxSendLagMs = Math.max(maxSendLagMs, now - scheduled);
        pending.push(
          send(index).then((problem) => {
            if (!measured) return;
            if (problem === undefined) latencies.push(performance.now() - scheduled);
            else {
              errors += 1;
              firstError ??= problem;
            }
          }),
        );
        index += 1;
      }
      if (index >= total) return resolve();
      setTimeout(tick, Math.max(0, start + index * interval - performance.now()));
    };
    setTimeout(tick, 5);
  });
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  return {
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? Number.NaN,
    sent: total - warmupCount,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    maxSendLagMs,
  };
}
