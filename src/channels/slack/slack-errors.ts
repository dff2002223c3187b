import { webApi } from '@slack/bolt';
import { ChannelSendError } from '../channel-adapter.js';

/**
 * Slack errors a retry cannot fix: the bot cannot post there, or its token is no good. The
 * outbox then stops retrying and fails the reply over to another platform at once.
 */
const PERMANENT_SEND_ERRORS = new Set([
  'not_in_channel',
  'channel_not_found',
  'is_archived',
  'restricted_action',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'missing_scope',
  'msg_too_long',
  'no_text',
]);

/**
 * Token errors at start: configuration, not an outage, so `start()` reports them instead of
 * retrying forever. The same list Slack's Socket Mode client treats as unrecoverable, plus
 * the token-type mistake (a bot token where the app token belongs).
 */
export const BAD_CONFIG_ERRORS: ReadonlySet<string> = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'team_disabled',
  'user_removed_from_team',
  'not_allowed_token_type',
  'missing_scope',
]);

interface CodedSlackError {
  code?: unknown;
  /** RateLimitedError: seconds from Retry-After. */
  retryAfter?: unknown;
  /** PlatformError: Slack's `{ ok: false, error }`. */
  data?: { error?: unknown };
  /** HTTPError. */
  statusCode?: unknown;
}

function coded(error: unknown): CodedSlackError {
  return typeof error === 'object' && error !== null ? (error as CodedSlackError) : {};
}

/** Slack's `error` string of a platform error (`not_in_channel`), if it is one. */
export function platformError(error: unknown): string | undefined {
  const e = coded(error);
  if (e.code !== webApi.ErrorCode.PlatformError) return undefined;
  return typeof e.data?.error === 'string' ? e.data.error : undefined;
}

export function isBadConfigError(error: unknown): boolean {
  const code = platformError(error);
  return code !== undefined && BAD_CONFIG_ERRORS.has(code);
}

/**
 * Maps a Web API failure to the outbox's terms: a rate limit waits `Retry-After`; a refusal
 * in the list above is permanent; network and HTTP failures, and other platform errors (Slack's
 * `internal_error`, `service_unavailable`, ...), are retried.
 */
export function toSendError(error: unknown): ChannelSendError {
  const e = coded(error);
  if (e.code === webApi.ErrorCode.RateLimitedError) {
    const seconds = typeof e.retryAfter === 'number' && e.retryAfter >= 0 ? e.retryAfter : 1;
    return new ChannelSendError(`Slack rate limit; retry in ${seconds} s`, {
      retryAfterMs: seconds * 1000,
      cause: error,
    });
  }
  const platform = platformError(error);
  if (platform !== undefined) {
    return new ChannelSendError(`Slack refused the message: ${platform}`, {
      permanent: PERMANENT_SEND_ERRORS.has(platform),
      cause: error,
    });
  }
  if (e.code === webApi.ErrorCode.HTTPError) {
    return new ChannelSendError(`Slack answered HTTP ${String(e.statusCode)}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ChannelSendError(`Slack unreachable: ${message}`, { cause: error });
}
