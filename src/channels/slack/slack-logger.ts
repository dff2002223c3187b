import { LogLevel, type Logger as SlackLogger } from '@slack/bolt';
import type { Logger } from 'pino';

/**
 * The Slack libraries (Web API client, Socket Mode client) log through this, so their lines land
 * in the agent's pino log with the channel's bindings instead of on the console.
 */
export function slackLogger(logger: Logger): SlackLogger {
  // The libraries ask for the level to skip building debug strings; pino's own level decides
  // what is written, so `setLevel` only changes what we report back.
  let level = fromPino(logger.level);
  const write =
    (method: 'debug' | 'info' | 'warn' | 'error') =>
    (...message: unknown[]): void =>
      logger[method](message.map((part) => (part instanceof Error ? part.message : String(part))).join(' '));
  return {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    setLevel: (next: LogLevel) => {
      level = next;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

function fromPino(level: string): LogLevel {
  if (level === 'trace' || level === 'debug') return LogLevel.DEBUG;
  if (level === 'info') return LogLevel.INFO;
  if (level === 'warn') return LogLevel.WARN;
  return LogLevel.ERROR;
}
