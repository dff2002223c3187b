import { GrammyError, HttpError } from 'grammy';
import { ChannelSendError } from '../channel-adapter.js';

/**
 * Maps a failed Bot API call to what the outbox needs to know: 429 waits `retry_after`; 400 (chat
 * not found, bad request) and 403 (blocked, kicked) will fail again the same way; anything else
 * (network, 5xx, a revoked token being fixed) may pass later.
 */
export function toChannelSendError(error: unknown, tokens: string | readonly string[]): ChannelSendError {
  const message = describeTelegramError(error, tokens);
  if (error instanceof GrammyError) {
    if (error.error_code === 429) {
      const seconds = error.parameters.retry_after;
      return new ChannelSendError(message, {
        cause: error,
        ...(typeof seconds === 'number' ? { retryAfterMs: seconds * 1000 } : {}),
      });
    }
    const permanent = error.error_code === 400 || error.error_code === 403;
    return new ChannelSendError(message, { cause: error, permanent });
  }
  return new ChannelSendError(message, { cause: error });
}

/**
 * One line for logs and `health().lastError`. grammy keeps the network error's own message out of
 * `HttpError.message` because node-fetch puts the request URL, token included, in it; this adds
 * only the error code (ECONNREFUSED, ECONNRESET) and still scrubs the token from whatever it shows:
 * every token given, since a call made before a rotation fails with the old one in its text.
 */
export function describeTelegramError(error: unknown, tokens: string | readonly string[]): string {
  let text: string;
  if (error instanceof GrammyError) text = `${error.method}: ${error.error_code} ${error.description}`;
  else if (error instanceof HttpError) {
    const cause = error.error as { code?: unknown; name?: unknown; type?: unknown } | undefined;
    const detail = [cause?.code, cause?.type, cause?.name].find((v) => typeof v === 'string');
    text = detail === undefined ? error.message : `${error.message} (${String(detail)})`;
  } else text = error instanceof Error ? error.message : String(error);
  for (const token of typeof tokens === 'string' ? [tokens] : tokens)
    if (token.length > 0) text = text.split(token).join('[token]');
  return text;
}

/** The supergroup a group became, when Telegram says so (the old chat id no longer works). */
export function migratedChatId(error: unknown): number | undefined {
  if (!(error instanceof GrammyError) || error.error_code !== 400) return undefined;
  const target = error.parameters.migrate_to_chat_id;
  return typeof target === 'number' ? target : undefined;
}
