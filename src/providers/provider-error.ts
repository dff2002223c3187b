import { AgentError, isAgentError } from '../core/errors.js';

/**
 * Why a provider call failed, in the gateway's terms. The SDK error classes differ between
 * openai and @anthropic-ai/sdk, so both are read through their common shape: `status`,
 * `headers`, the error body and the class name.
 */
export type ProviderFailure =
  | 'rate_limited'
  | 'unauthorized'
  | 'overloaded'
  | 'server_error'
  | 'timeout'
  | 'connection'
  /** The prompt does not fit the model's context window: retrying the same request cannot help. */
  | 'context_too_long'
  /** The provider's content filter rejected the request (Azure's `content_filter`). */
  | 'refusal'
  | 'bad_request'
  /** A 200 whose body is not the wire format (a proxy's HTML page, broken JSON, a stream cut short). */
  | 'malformed'
  | 'aborted'
  | 'unknown';

export interface ProviderErrorClassification {
  failure: ProviderFailure;
  status?: number;
  /** When the provider said it may be retried (retry-after, retry-after-ms, x-ratelimit-reset-*). */
  retryAfterMs?: number;
  /** The provider's own error code or type, when it sent one (e.g. `context_length_exceeded`). */
  code?: string;
}

/** A reply that does not follow the provider's wire format; classified as `malformed`. */
export class MalformedResponseError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MalformedResponseError';
  }
}

/** Throws (classified `aborted`) if the caller's signal fired: the SDKs end an aborted stream quietly. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const error = new Error('the request was aborted', { cause: signal.reason });
  error.name = 'AbortError';
  throw error;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

const CONTEXT_CODES = new Set(['context_length_exceeded']);
const CONTEXT_MESSAGE =
  /prompt is too long|maximum context length|context length|context window|too many tokens/i;

export function classifyProviderError(error: unknown): ProviderErrorClassification {
  if (isAgentError(error) && typeof error.details?.failure === 'string') {
    const { failure, status, retryAfterMs, code } = error.details as Partial<ProviderErrorClassification>;
    return {
      failure: failure as ProviderFailure,
      ...(typeof status === 'number' ? { status } : {}),
      ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  const e = (error ?? {}) as {
    status?: unknown;
    name?: unknown;
    message?: unknown;
    code?: unknown;
    errorCode?: unknown;
    type?: unknown;
    error?: unknown;
    headers?: unknown;
    cause?: unknown;
    constructor?: { name?: string };
  };
  const name = String(e.name ?? e.constructor?.name ?? '');
  const ctor = String(e.constructor?.name ?? '');
  const status = typeof e.status === 'number' ? e.status : undefined;
  const code = errorCode(e);
  const retryAfterMs = parseRetryAfterMs(e.headers);
  const extra = {
    ...(status !== undefined ? { status } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(code !== undefined ? { code } : {}),
  };
  const is = (n: string) => name === n || ctor === n;

  if (is('APIUserAbortError') || is('AbortError')) return { failure: 'aborted' };
  if (is('APIConnectionTimeoutError') || is('TimeoutError')) return { failure: 'timeout' };
  if (is('APIConnectionError')) return { failure: 'connection' };
  if (is('MalformedResponseError') || is('SyntaxError')) return { failure: 'malformed', ...extra };

  if (status === undefined) {
    // Errors sent inside a stream (Anthropic `event: error`) carry a type but no status.
    if (code === 'overloaded_error') return { failure: 'overloaded', ...extra };
    if (code === 'rate_limit_error') return { failure: 'rate_limited', ...extra };
    if (code === 'api_error' || code === 'server_error') return { failure: 'server_error', ...extra };
    if (isNetworkError(error)) return { failure: 'connection' };
    return { failure: 'unknown', ...extra };
  }
  if (status === 429) return { failure: 'rate_limited', ...extra };
  if (status === 401 || status === 403) return { failure: 'unauthorized', ...extra };
  if (status === 529 || status === 503) return { failure: 'overloaded', ...extra };
  if (status === 408 || status === 504) return { failure: 'timeout', ...extra };
  if (status >= 500) return { failure: 'server_error', ...extra };
  if (status === 400 || status === 413) {
    const message = apiMessage(e);
    if ((code && CONTEXT_CODES.has(code)) || CONTEXT_MESSAGE.test(message))
      return { failure: 'context_too_long', ...extra };
    if (code === 'content_filter' || code === 'ResponsibleAIPolicyViolation')
      return { failure: 'refusal', ...extra };
  }
  return { failure: 'bad_request', ...extra };
}

/** Wraps an SDK error into an `AgentError` that says which provider failed and how. */
export function toProviderError(providerId: string, error: unknown): AgentError {
  if (isAgentError(error) && error.details?.provider === providerId) return error;
  const { failure, status, retryAfterMs, code } = classifyProviderError(error);
  const detail = status === undefined ? failure : `${failure}, HTTP ${status}`;
  return new AgentError('provider_unavailable', `provider "${providerId}" failed (${detail})`, {
    cause: error,
    details: {
      provider: providerId,
      failure,
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(code !== undefined ? { code } : {}),
    },
  });
}

/**
 * How long the provider asked us to wait, in milliseconds, from (first match wins):
 * `retry-after-ms`; `retry-after` (seconds or an HTTP date); OpenAI's
 * `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` (`1s`, `6m0s`, `20ms`), preferring
 * the limit whose `x-ratelimit-remaining-*` is 0 and otherwise the later of the two.
 */
export function parseRetryAfterMs(headers: unknown, now: number = Date.now()): number | undefined {
  const get = headerReader(headers);
  if (!get) return undefined;

  const ms = get('retry-after-ms');
  if (ms !== undefined) {
    const value = Number(ms);
    if (ms.trim() !== '' && Number.isFinite(value) && value >= 0) return Math.round(value);
  }
  const after = get('retry-after');
  if (after !== undefined && after.trim() !== '') {
    const seconds = Number(after);
    if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000));
    const date = Date.parse(after);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const limits = (['requests', 'tokens'] as const).map((kind) => ({
    reset: parseDurationMs(get(`x-ratelimit-reset-${kind}`)),
    exhausted: get(`x-ratelimit-remaining-${kind}`)?.trim() === '0',
  }));
  const known = limits.filter((l) => l.reset !== undefined);
  const exhausted = known.filter((l) => l.exhausted);
  const pick = exhausted.length > 0 ? exhausted : known;
  if (pick.length === 0) return undefined;
  return Math.max(...pick.map((l) => l.reset as number));
}

/** Parses Go-style durations as OpenAI sends them: `20ms`, `1s`, `6m0s`, `1h2m3.5s`; a bare number is seconds. */
export function parseDurationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = text.trim();
  if (value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  if (!/^(\d+(\.\d+)?(ms|us|µs|ns|h|m|s))+$/.test(value)) return undefined;
  const factor: Record<string, number> = {
    h: 3_600_000,
    m: 60_000,
    s: 1000,
    ms: 1,
    us: 0.001,
    µs: 0.001,
    ns: 1e-6,
  };
  let total = 0;
  for (const match of value.matchAll(/(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g)) {
    total += Number(match[1]) * (factor[match[2] as string] as number);
  }
  return Math.round(total);
}

function headerReader(headers: unknown): ((name: string) => string | undefined) | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const h = headers as { get?: unknown };
  if (typeof h.get === 'function') {
    const getter = h.get as (name: string) => string | null;
    return (name) => getter.call(headers, name) ?? undefined;
  }
  const lower = new Map(
    Object.entries(headers as Record<string, unknown>).map(([k, v]) => [
      k.toLowerCase(),
      Array.isArray(v) ? String(v[0]) : v === undefined || v === null ? undefined : String(v),
    ]),
  );
  return (name) => lower.get(name);
}

/** OpenAI: `error.code` (or `type`); Anthropic: `error.error.type` / `errorCode`. */
function errorCode(e: {
  code?: unknown;
  errorCode?: unknown;
  type?: unknown;
  error?: unknown;
}): string | undefined {
  if (typeof e.code === 'string' && e.code !== '' && !NETWORK_CODES.has(e.code)) return e.code;
  if (typeof e.errorCode === 'string' && e.errorCode !== '') return e.errorCode;
  const body = e.error as
    | { code?: unknown; type?: unknown; error?: { type?: unknown; code?: unknown } }
    | undefined;
  const nested = body?.error;
  for (const candidate of [nested?.code, body?.code, nested?.type, e.type, body?.type]) {
    if (typeof candidate === 'string' && candidate !== '' && candidate !== 'error') return candidate;
  }
  return undefined;
}

function apiMessage(e: { message?: unknown; error?: unknown }): string {
  const body = e.error as { message?: unknown; error?: { message?: unknown } } | undefined;
  return [e.message, body?.message, body?.error?.message].filter((m) => typeof m === 'string').join(' ');
}

function isNetworkError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const c = current as { code?: unknown; message?: unknown; name?: unknown; cause?: unknown };
    if (typeof c.code === 'string' && NETWORK_CODES.has(c.code)) return true;
    if (c.name === 'TypeError' && (c.message === 'terminated' || c.message === 'fetch failed')) return true;
    current = c.cause;
  }
  return false;
}
