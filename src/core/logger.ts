import { type DestinationStream, type Logger, pino } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Values that must never appear in a log line, whatever field they end up in. */
  secrets: readonly string[];
  destination?: DestinationStream;
  /**
   * Replaces `secrets` as the final scrub of each line: for secrets that change while the agent
   * runs (rotated in Vault), which a list fixed at start cannot follow.
   */
  scrub?: (text: string) => string;
}

/**
 * pino with two layers of redaction: known secret-bearing fields are censored by path, and every
 * configured secret value is replaced in the final line, which catches a key that slipped into
 * an error message or a URL.
 */
export function createLogger(options: LoggerOptions): Logger {
  // A log line is JSON, so a secret appears in it in its JSON-escaped form.
  const scrub =
    options.scrub ?? secretScrubber(options.secrets, (secret) => JSON.stringify(secret).slice(1, -1));
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["x-api-key"]',
          'headers.authorization',
          '*.apiKey',
          '*.authTokens',
          '*.token',
          '*.password',
        ],
        censor: '[redacted]',
      },
      hooks: {
        streamWrite: scrub,
      },
    },
    options.destination,
  );
}

/**
 * Cuts every configured secret out of a text (a log line, an alert sent to a chat). Values shorter
 * than 6 characters are left alone (they would match ordinary words); the longest go first, so a
 * secret containing another is cut whole.
 */
export function secretScrubber(
  secrets: readonly string[],
  encode: (secret: string) => string = (secret) => secret,
): (text: string) => string {
  const cut = [...new Set(secrets)]
    .filter((s) => s.length >= 6)
    .sort((a, b) => b.length - a.length)
    .map(encode);
  return (text) => {
    let out = text;
    for (const secret of cut) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
    return out;
  };
}
