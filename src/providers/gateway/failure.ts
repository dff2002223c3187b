import { isAgentError } from '../../core/errors.js';
import type { FailureClass } from './route.js';

/** The failures that say a provider is unhealthy, and so count towards its circuit breaker. */
const BREAKER_FAILURES = new Set<FailureClass>([
  'overloaded',
  'server_error',
  'timeout',
  'connection',
  'malformed',
]);

export interface ClassifiedFailure {
  failure: FailureClass;
  status?: number;
  /** From retry-after, retry-after-ms or x-ratelimit-reset-* on a 429. */
  retryAfterMs?: number;
}

/** Reads the classification the provider wrappers attach to their `AgentError`s. */
export function failureOf(error: unknown): ClassifiedFailure {
  if (isAgentError(error) && error.details) {
    const d = error.details as { failure?: FailureClass; status?: number; retryAfterMs?: number };
    return {
      failure: d.failure ?? 'unknown',
      ...(d.status !== undefined ? { status: d.status } : {}),
      ...(d.retryAfterMs !== undefined ? { retryAfterMs: d.retryAfterMs } : {}),
    };
  }
  if ((error as { name?: string })?.name === 'AbortError') return { failure: 'aborted' };
  return { failure: 'unknown' };
}

export function isBreakerFailure(error: unknown): boolean {
  return BREAKER_FAILURES.has(failureOf(error).failure);
}
