import { DiscordAPIError, HTTPError, RateLimitError } from 'discord.js';
import { ChannelSendError } from '../channel-adapter.js';

/**
 * Discord JSON error codes after which resending the same message cannot succeed: unknown
 * channel/message/user, missing access or permissions, the user blocks DMs from the bot (50007),
 * invalid form body (50035), empty message (50006).
 */
const PERMANENT_CODES = new Set([10003, 10008, 10013, 50001, 50006, 50007, 50013, 50035]);

/**
 * Maps what @discordjs/rest throws to the outbox's terms. The REST client runs with `retries: 0`
 * and rejects long rate limits, so every error reaches here at once and the outbox alone decides
 * when to try again.
 */
export function toSendError(error: unknown): ChannelSendError {
  if (error instanceof ChannelSendError) return error;
  if (error instanceof RateLimitError) {
    // On a 429 `retryAfter` is Discord's Retry-After (+ the client's 50 ms offset); when the
    // client refused on its own (bucket known to be empty) both fields hold the time to reset.
    const retryAfterMs = Math.max(0, Math.ceil(error.retryAfter > 0 ? error.retryAfter : error.timeToReset));
    return new ChannelSendError(
      `discord rate limit${error.global ? ' (global)' : ''} on ${error.method.toUpperCase()} ${error.route}: retry in ${retryAfterMs} ms`,
      { retryAfterMs, cause: error },
    );
  }
  if (error instanceof DiscordAPIError) {
    const code = typeof error.code === 'number' ? error.code : undefined;
    const permanent =
      (code !== undefined && PERMANENT_CODES.has(code)) ||
      // Other 4xx (403, 404, 400) repeat identically; 408 is a timeout. A 401 is about the bot,
      // not this message: its token was reset, and the rotated one may be on its way
      // (`renewSecrets`), so the outbox retries it and meanwhile treats Discord as down.
      (error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 401);
    return new ChannelSendError(
      `discord refused the message: ${error.status} ${error.message} (code ${String(error.code)})`,
      {
        permanent,
        cause: error,
      },
    );
  }
  if (error instanceof HTTPError) {
    return new ChannelSendError(`discord server error ${error.status} on ${error.method} ${error.url}`, {
      cause: error,
    });
  }
  // Connection refused/reset, DNS, timeouts (AbortError): the network, so worth retrying.
  const message = error instanceof Error ? error.message : String(error);
  return new ChannelSendError(`discord unreachable: ${message}`, { cause: error });
}
