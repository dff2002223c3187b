import { type CircuitBreakerPolicy, circuitBreaker, handleWhen } from 'cockatiel';
import type { ChatProvider } from '../provider.js';
import { type BreakerThresholds, CompositeBreaker } from './composite-breaker.js';
import { isBreakerFailure } from './failure.js';
import { LatencyTracker } from './latency-tracker.js';

/** What the router needs to know about one provider besides its health. */
export interface RouteSettings {
  /** Lower goes first under the `priority` strategy. Default: the order in the config. */
  priority: number;
  /** Share of traffic under the `weighted` strategy. */
  weight: number;
  /** Largest prompt plus reply, in tokens. */
  contextWindow: number;
  tools: boolean;
  streaming: boolean;
  /** USD per million tokens; undefined when the model has no known price. */
  price?: { inputPerMTok: number; outputPerMTok: number };
  /** Identifies the credentials, so a provider disabled for a refused key comes back with a new one. */
  fingerprint: string;
}

export type FailureClass =
  | 'rate_limited'
  | 'unauthorized'
  | 'overloaded'
  | 'server_error'
  | 'timeout'
  | 'connection'
  | 'malformed'
  | 'context_too_long'
  | 'refusal'
  | 'bad_request'
  | 'budget'
  | 'aborted'
  | 'unknown';

/** One provider as the gateway runs it: the SDK wrapper, its breaker, latency and counters. */
export class ProviderRoute {
  readonly breaker: CircuitBreakerPolicy;
  readonly latency = new LatencyTracker();
  requests = 0;
  readonly errors = new Map<FailureClass, number>();
  lastError: { at: number; failure: FailureClass; message: string } | undefined;
  /** Requests and errors in the last hour, by minute, for `/status`. */
  private readonly minutes = new Map<number, { requests: number; errors: number }>();

  constructor(
    readonly provider: ChatProvider,
    readonly settings: RouteSettings,
    breaker: BreakerThresholds & { halfOpenAfterMs: number },
  ) {
    this.breaker = circuitBreaker(handleWhen(isBreakerFailure), {
      halfOpenAfter: breaker.halfOpenAfterMs,
      breaker: new CompositeBreaker(breaker),
    });
  }

  get id(): string {
    return this.provider.id;
  }

  recordRequest(now: number): void {
    this.requests += 1;
    this.minute(now).requests += 1;
  }

  recordError(now: number, failure: FailureClass, message: string): void {
    this.errors.set(failure, (this.errors.get(failure) ?? 0) + 1);
    this.lastError = { at: now, failure, message };
    this.minute(now).errors += 1;
  }

  lastHour(now: number): { requests: number; errors: number } {
    const from = Math.floor(now / 60_000) - 59;
    let requests = 0;
    let errors = 0;
    for (const [minute, counts] of this.minutes) {
      if (minute < from) this.minutes.delete(minute);
      else {
        requests += counts.requests;
        errors += counts.errors;
      }
    }
    return { requests, errors };
  }

  private minute(now: number) {
    const key = Math.floor(now / 60_000);
    let counts = this.minutes.get(key);
    if (!counts) {
      counts = { requests: 0, errors: 0 };
      this.minutes.set(key, counts);
    }
    return counts;
  }
}
