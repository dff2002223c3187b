import { type Bindings, type ChildLoggerOptions, type DestinationStream, type Logger, pino } from 'pino';

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
  // A log line is JSON, so a secret appears in it JSON-escaped; in a URL (a Redis password, a
  // Telegram token in a path) percent-encoded; in a JSON body a library logs as a string (Slack's
  // debug lines) escaped twice.
  const scrub = options.scrub ?? logLineScrubber(options.secrets);
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

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/**
 * A child of `parent` that is built only when it first writes a line (at an enabled level). The
 * HTTP channel makes a child per request and per turn, and at the usual levels almost none of
 * them ever writes; building each one (its bindings serialised and redacted) was a few percent
 * of the channel's CPU. Everything but writing and `child` is answered by the parent (level,
 * `isLevelEnabled`); a child with options of its own is built at once.
 */
export function lazyChild(parent: Logger, bindings: Bindings, options?: ChildLoggerOptions): Logger {
  if (options && Object.keys(options).length > 0) return parent.child(bindings, options);
  let real: Logger | undefined;
  const materialize = () => {
    real ??= parent.child(bindings);
    return real;
  };
  const lazy = Object.create(parent) as Logger;
  for (const level of LEVELS) {
    lazy[level] = ((...args: Parameters<Logger['info']>) => {
      if (parent.isLevelEnabled(level)) materialize()[level](...args);
    }) as Logger['info'];
  }
  lazy.child = ((more: Bindings, moreOptions?: ChildLoggerOptions) =>
    real
      ? real.child(more, moreOptions)
      : lazyChild(parent, { ...bindings, ...more }, moreOptions)) as unknown as Logger['child'];
  lazy.bindings = () => ({ ...parent.bindings(), ...bindings });
  return lazy;
}

/** Cuts `secrets` out of a log line in every form one takes there (see `createLogger`). */
export function logLineScrubber(secrets: readonly string[]): (line: string) => string {
  return secretScrubber(
    secrets.flatMap((secret) => [secret, encodeURIComponent(secret), jsonEscaped(secret)]),
    jsonEscaped,
  );
}

function jsonEscaped(text: string): string {
  return JSON.stringify(text).slice(1, -1);
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
