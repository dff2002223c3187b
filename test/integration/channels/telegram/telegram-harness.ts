import { type Logger, pino } from 'pino';
import type { ChannelEvent, ChannelSink } from '../../../../src/channels/channel-adapter.js';
import {
  CHANNELS_DEFAULTS,
  type ChannelsConfig,
  type TelegramConfig,
} from '../../../../src/channels/channels-config.js';
import {
  TelegramAdapter,
  type TelegramAdapterOptions,
} from '../../../../src/channels/telegram/telegram-adapter.js';
import type { FakeTelegram } from '../../../fakes/fake-telegram.js';

/** Records accepted events; `failNext(n)` makes the next n calls reject, as a sink with Redis down would. */
export class RecordingSink implements ChannelSink {
  readonly events: ChannelEvent[] = [];
  /** Every call, accepted or not. */
  readonly attempts: ChannelEvent[] = [];
  private failures = 0;

  /** `onAttempt` runs at each call, before it is accepted or refused. */
  constructor(private readonly onAttempt?: (event: ChannelEvent) => void) {}

  failNext(n: number): void {
    this.failures += n;
  }

  async receive(event: ChannelEvent): Promise<void> {
    this.attempts.push(event);
    this.onAttempt?.(event);
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('sink unavailable');
    }
    this.events.push(event);
  }
}

export function telegramConfig(fake: FakeTelegram, overrides: Partial<TelegramConfig> = {}): TelegramConfig {
  return {
    enabled: true,
    botToken: fake.token,
    apiRoot: fake.url,
    mode: 'polling',
    webhookPath: '/telegram/webhook',
    pollTimeoutSeconds: 1,
    ...overrides,
  };
}

/** The whole `channels` section with this Telegram config, as a reload hands it to `renewSecrets`. */
export function channelsWith(fake: FakeTelegram, overrides: Partial<TelegramConfig> = {}): ChannelsConfig {
  return { ...CHANNELS_DEFAULTS, telegram: telegramConfig(fake, overrides) };
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A debug-level logger whose lines the test can read. */
export function capturingLogger(): { logger: Logger; logs: LogLine[] } {
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => logs.push(JSON.parse(line) as LogLine) },
  );
  return { logger, logs };
}

/** An adapter against the fake, with back-off short enough for tests. TEST_LOG_LEVEL=debug shows its log. */
export function createAdapter(
  fake: FakeTelegram,
  config: Partial<TelegramConfig> = {},
  options: Partial<TelegramAdapterOptions> = {},
): TelegramAdapter {
  return new TelegramAdapter({
    config: telegramConfig(fake, config),
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    backoff: { initialMs: 20, maxMs: 200 },
    requestTimeoutMs: 5_000,
    ...options,
  });
}

export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const COMMANDS = [
  { name: 'help', summary: 'What I can do' },
  { name: 'reset', summary: 'Start a fresh conversation' },
];
