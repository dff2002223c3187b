import { AgentError } from '../core/errors.js';

/**
 * Why a provider call failed, in the gateway's terms. The SDK error classes differ between
 * openai and @anthropic-ai/sdk, so both are read through their common shape: `status`,
 * `headers` and the class name.
 */
export type ProviderFailure =
  | 'rate_limited'
  | 'unauthorized'
  | 'overloaded'
  | 'server_error'
  | 'timeout'
  | 'connection'
  | 'bad_request'
  | 'aborted'
  | 'unknown';

export function classifyProviderError(error: unknown): { failure: ProviderFailure; status?: number } {
  const e = error as { status?: unknown; name?: unknown; constructor?: { name?: string } };
  const name = String(e?.constructor?.name ?? e?.name ?? '');
  const status = typeof e?.status === 'number' ? e.status : undefined;
  if (name === 'APIUserAbortError' || name === 'AbortError') return { failure: 'aborted' };
  if (name === 'APIConnectionTimeoutError') return { failure: 'timeout' };
  if (name === 'APIConnectionError') return { failure: 'connection' };
  if (status === undefined) return { failure: 'unknown' };
  if (status === 429) return { failure: 'rate_limited', status };
  if (status === 401 || status === 403) return { failure: 'unauthorized', status };
  if (status === 529 || status === 503) return { failure: 'overloaded', status };
  if (status >= 500) return { failure: 'server_error', status };
  return { failure: 'bad_request', status };
}

/** Wraps an SDK error into an `AgentError` that says which provider failed and how. */
export function toProviderError(providerId: string, error: unknown): AgentError {
  const { failure, status } = classifyProviderError(error);
  const detail = status === undefined ? failure : `${failure}, HTTP ${status}`;
  return new AgentError('provider_unavailable', `provider "${providerId}" failed (${detail})`, {
    cause: error,
    details: { provider: providerId, failure, status },
  });
}
