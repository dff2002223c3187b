import { pino } from 'pino';
import type {
  ChannelEvent,
  ChannelSink,
  PublishedCommand,
} from '../../../../src/channels/channel-adapter.js';
import type { DiscordConfig } from '../../../../src/channels/channels-config.js';
import {
  DiscordAdapter,
  type DiscordAdapterOptions,
} from '../../../../src/channels/discord/discord-adapter.js';
import type { FakeDiscord } from '../../../fakes/fake-discord.js';

/** Records what the adapter hands the agent; `failNext` makes receive() reject like a store that is down. */
export class RecordingSink implements ChannelSink {
  readonly events: ChannelEvent[] = [];
  attempts = 0;
  private failures = 0;

  failNext(times: number): void {
    this.failures = times;
  }

  async receive(event: ChannelEvent): Promise<void> {
    this.attempts += 1;
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('store unavailable');
    }
    this.events.push(event);
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export const COMMANDS: PublishedCommand[] = [
  { name: 'help', summary: 'list the commands' },
  { name: 'status', summary: 'providers, memory backend, uptime and version' },
  { name: 'link', summary: 'link this account to another channel with a code' },
  { name: 'unlink', summary: 'unlink this account' },
];

export function configFor(fake: FakeDiscord, guildIds: string[] = []): DiscordConfig {
  return { enabled: true, botToken: fake.token, apiRoot: fake.apiRoot, guildIds };
}

export interface Started {
  adapter: DiscordAdapter;
  sink: RecordingSink;
  logs: LogLine[];
}

/** An adapter on the fake with small back-off, started (not necessarily connected yet). */
export async function startAdapter(
  fake: FakeDiscord,
  options: Partial<Omit<DiscordAdapterOptions, 'logger'>> & {
    commands?: PublishedCommand[];
    /** The sink to start with. Default a new `RecordingSink`. */
    sink?: RecordingSink;
  } = {},
): Promise<Started> {
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        logs.push(JSON.parse(line) as LogLine);
      },
    },
  );
  const adapter = new DiscordAdapter({
    config: options.config ?? configFor(fake),
    logger,
    backoff: { initialMs: 50, maxMs: 200, receiveAttempts: 4, ...options.backoff },
    ...(options.maxRateLimitWaitMs !== undefined ? { maxRateLimitWaitMs: options.maxRateLimitWaitMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    ...(options.cursors !== undefined ? { cursors: options.cursors } : {}),
  });
  const sink = options.sink ?? new RecordingSink();
  await adapter.start(sink, options.commands ?? COMMANDS);
  return { adapter, sink, logs };
}

/** Polls until `check` passes or `timeoutMs` runs out (then throws its last error). */
export async function eventually<T>(check: () => T, timeoutMs = 5000, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

export function connected(adapter: DiscordAdapter, timeoutMs = 5000): Promise<void> {
  return eventually(() => {
    if (!adapter.health().connected) throw new Error(`not connected: ${JSON.stringify(adapter.health())}`);
  }, timeoutMs);
}

/** The value, or a failed assertion naming what was missing (instead of a non-null assertion). */
export function defined<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`expected ${what}`);
  return value;
}

/** The first text channel of the fake's first guild. */
export function guildChannel(fake: FakeDiscord): string {
  return defined(fake.guilds[0]?.channelIds[0], 'a guild channel on the fake');
}
