import { type Logger as SlackLogger, webApi } from '@slack/bolt';

export interface SlackWebClientOptions {
  /** Web API root, with its trailing slash. */
  apiUrl: string;
  logger: SlackLogger;
  /** Timeout of each call (the client's own default is none). */
  timeoutMs: number;
}

/**
 * The Web API client for one bot token. The client bakes its token into every request's headers
 * at construction, so a rotated token means a new client (calls in flight finish on the old one).
 */
export function slackWebClient(botToken: string, options: SlackWebClientOptions): webApi.WebClient {
  return new webApi.WebClient(botToken, {
    slackApiUrl: options.apiUrl,
    logger: options.logger,
    // The outbox retries (and fails over); retries in here would hide failures from it.
    retryConfig: { retries: 0 },
    // A 429 becomes an error with Retry-After instead of a silent wait inside send().
    rejectRateLimitedCalls: true,
    timeout: options.timeoutMs,
    // The original (axios) error carries the request's headers, the bot token among them, and
    // errors end up in logs and in the outbox's records.
    attachOriginalToWebAPIRequestError: false,
  });
}
