import { describe, expect, it } from 'vitest';
import { AgentError } from '../../../src/core/errors.js';
import {
  classifyProviderError,
  MalformedResponseError,
  parseDurationMs,
  parseRetryAfterMs,
  toProviderError,
} from '../../../src/providers/provider-error.js';

/** The common shape of both SDKs' APIError. */
function apiError(
  status: number | undefined,
  body: unknown,
  headers: Record<string, string> = {},
  extra = {},
) {
  const inner = (body as { error?: { code?: string; type?: string; message?: string } })?.error;
  return Object.assign(new Error(inner?.message ?? 'error'), {
    name: 'APIError',
    status,
    headers: new Headers(headers),
    error: body,
    ...extra,
  });
}

describe('parseDurationMs', () => {
  it.each([
    ['1s', 1000],
    ['6m0s', 360_000],
    ['20ms', 20],
    ['1h2m3.5s', 3_723_500],
    ['0.5s', 500],
    ['2', 2000],
    ['', undefined],
    ['soon', undefined],
    [undefined, undefined],
  ])('%s -> %s', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });
});

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('prefers retry-after-ms, then retry-after (seconds or a date), then the reset headers', () => {
    expect(parseRetryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '3' }))).toBe(250);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '3' }))).toBe(3000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '0.5' }))).toBe(500);
    expect(parseRetryAfterMs({ 'Retry-After': 'Wed, 01 Jan 2025 00:00:10 GMT' }, now)).toBe(10_000);
    expect(parseRetryAfterMs({ 'retry-after': 'Tue, 31 Dec 2024 00:00:00 GMT' }, now)).toBe(0);
    expect(parseRetryAfterMs(new Headers({ 'x-ratelimit-reset-requests': '6m0s' }))).toBe(360_000);
    expect(parseRetryAfterMs(new Headers())).toBeUndefined();
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
  });

  it('uses the exhausted limit, else the later reset', () => {
    const both = { 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s' };
    expect(parseRetryAfterMs(new Headers(both))).toBe(360_000);
    expect(parseRetryAfterMs(new Headers({ ...both, 'x-ratelimit-remaining-requests': '0' }))).toBe(1000);
    expect(parseRetryAfterMs(new Headers({ ...both, 'x-ratelimit-remaining-tokens': '0' }))).toBe(360_000);
  });
});

describe('classifyProviderError', () => {
  it.each([
    [429, 'rate_limited'],
    [401, 'unauthorized'],
    [403, 'unauthorized'],
    [503, 'overloaded'],
    [529, 'overloaded'],
    [500, 'server_error'],
    [502, 'server_error'],
    [504, 'timeout'],
    [404, 'bad_request'],
    [422, 'bad_request'],
  ])('HTTP %d -> %s', (status, failure) => {
    expect(classifyProviderError(apiError(status, {}))).toMatchObject({ failure, status });
  });

  it('reads retry-after into retryAfterMs', () => {
    expect(
      classifyProviderError(
        apiError(429, { error: { code: 'rate_limit_exceeded' } }, { 'retry-after': '7' }),
      ),
    ).toEqual({ failure: 'rate_limited', status: 429, retryAfterMs: 7000, code: 'rate_limit_exceeded' });
  });

  it('recognises context overflow from OpenAI, Anthropic and Azure', () => {
    const openai = apiError(
      400,
      { code: 'context_length_exceeded', message: 'too long' },
      {},
      { code: 'context_length_exceeded' },
    );
    expect(classifyProviderError(openai).failure).toBe('context_too_long');
    const anthropic = apiError(400, {
      type: 'error',
      error: { type: 'invalid_request_error', message: 'prompt is too long: 210417 tokens > 200000 maximum' },
    });
    expect(classifyProviderError(anthropic).failure).toBe('context_too_long');
    expect(classifyProviderError(apiError(400, { error: { message: 'bad param' } })).failure).toBe(
      'bad_request',
    );
  });

  it('recognises a content-filter rejection', () => {
    const azure = apiError(
      400,
      { code: 'content_filter', message: 'filtered' },
      {},
      { code: 'content_filter' },
    );
    expect(classifyProviderError(azure).failure).toBe('refusal');
  });

  it('classifies errors without a status', () => {
    const named = (name: string, extra = {}) => Object.assign(new Error(name), { name, ...extra });
    expect(classifyProviderError(named('APIUserAbortError')).failure).toBe('aborted');
    expect(classifyProviderError(named('AbortError')).failure).toBe('aborted');
    expect(classifyProviderError(named('APIConnectionTimeoutError')).failure).toBe('timeout');
    expect(classifyProviderError(named('APIConnectionError')).failure).toBe('connection');
    expect(classifyProviderError(new SyntaxError('Unexpected token <')).failure).toBe('malformed');
    expect(classifyProviderError(new MalformedResponseError('x')).failure).toBe('malformed');
    const cut = new TypeError('terminated', {
      cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
    });
    expect(classifyProviderError(cut).failure).toBe('connection');
    expect(classifyProviderError(new Error('???')).failure).toBe('unknown');
    expect(classifyProviderError(undefined).failure).toBe('unknown');
  });

  it('classifies an error event inside an Anthropic stream by its type', () => {
    const overloaded = apiError(
      undefined,
      { type: 'error', error: { type: 'overloaded_error' } },
      {},
      { type: 'overloaded_error' },
    );
    expect(classifyProviderError(overloaded).failure).toBe('overloaded');
  });

  it('reads back the classification of a wrapped error', () => {
    const wrapped = toProviderError('p1', apiError(429, {}, { 'retry-after-ms': '120' }));
    expect(wrapped).toBeInstanceOf(AgentError);
    expect(wrapped.code).toBe('provider_unavailable');
    expect(wrapped.message).toBe('provider "p1" failed (rate_limited, HTTP 429)');
    expect(wrapped.details).toMatchObject({
      provider: 'p1',
      failure: 'rate_limited',
      status: 429,
      retryAfterMs: 120,
    });
    expect(classifyProviderError(wrapped)).toEqual({
      failure: 'rate_limited',
      status: 429,
      retryAfterMs: 120,
    });
    expect(toProviderError('p1', wrapped)).toBe(wrapped);
  });
});
