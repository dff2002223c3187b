import { type DestinationStream, type Logger, pino } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Values that must never appear in a log line, whatever field they end up in. */
  secrets: readonly string[];
  destination?: DestinationStream;
}

/**
 * pino with two layers of redaction: known secret-bearing fields are censored by path, and every
 * configured secret value is replaced in the final line, which catches a key that slipped into
 * an error message or a URL.
 */
export function createLogger(options: LoggerOptions): Logger {
  const secrets = [...new Set(options.secrets)]
    .filter((s) => s.length >= 6)
    .sort((a, b) => b.length - a.length);
  const jsonSecrets = secrets.map((s) => JSON.stringify(s).slice(1, -1));
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
        streamWrite(line) {
          let out = line;
          for (const secret of jsonSecrets)
            if (out.includes(secret)) out = out.split(secret).join('[redacted]');
          return out;
        },
      },
    },
    options.destination,
  );
}
