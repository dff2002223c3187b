import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { ChannelEvent, ChannelSink, ReplyAddress } from '../../../../src/channels/channel-adapter.js';
import {
  type ChannelsConfig,
  channelsSchema,
  type SlackConfig,
} from '../../../../src/channels/channels-config.js';
import { SlackAdapter, type SlackAdapterOptions } from '../../../../src/channels/slack/slack-adapter.js';
import { type FakeSlack, startFakeSlack } from '../../../fakes/fake-slack.js';
import { freePort } from '../../../support/free-port.js';

export const SIGNING_SECRET = 'test-signing-secret-0123456789abcdef';
export const silent = pino({ level: 'silent' });

/** A sink that records what it accepts, and can be told to refuse (the agent failing to store). */
export interface RecordingSink extends ChannelSink {
  events: ChannelEvent[];
  failWith: Error | undefined;
  /** Resolves once `n` events were accepted. */
  waitFor(n: number, timeoutMs?: number): Promise<ChannelEvent[]>;
}

export function recordingSink(): RecordingSink {
  const waiters: (() => void)[] = [];
  const sink: RecordingSink = {
    events: [],
    failWith: undefined,
    async receive(event) {
      if (sink.failWith) throw sink.failWith;
      sink.events.push(event);
      for (const wake of waiters.splice(0)) wake();
    },
    async waitFor(n, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (sink.events.length < n) {
        if (Date.now() > deadline) throw new Error(`waited for ${n} events, got ${sink.events.length}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return sink.events;
    },
  };
  return sink;
}

/** The address of the first accepted event (throws when there is none). */
export function firstAddress(sink: RecordingSink): ReplyAddress {
  const event = sink.events[0];
  if (!event) throw new Error('the sink has no event');
  return event.address;
}

export function slackConfig(fake: FakeSlack, overrides: Record<string, unknown> = {}): SlackConfig {
  const parsed = channelsConfig(fake, overrides);
  if (!parsed.slack) throw new Error('no slack config');
  return parsed.slack;
}

/** The whole channels configuration around `slackConfig` (what `renewSecrets` takes). */
export function channelsConfig(fake: FakeSlack, overrides: Record<string, unknown> = {}): ChannelsConfig {
  return channelsSchema.parse({
    slack: {
      botToken: fake.botToken,
      signingSecret: SIGNING_SECRET,
      apiUrl: fake.apiUrl,
      ...overrides,
    },
  });
}

/** Adapter options a test may set (a clock, a logger to read, the signing secret's grace). */
export type AdapterOverrides = Partial<Omit<SlackAdapterOptions, 'config'>>;

export function newAdapter(
  fake: FakeSlack,
  overrides: Record<string, unknown> = {},
  options: AdapterOverrides = {},
): SlackAdapter {
  return new SlackAdapter({
    config: slackConfig(fake, overrides),
    logger: silent,
    retry: { initialMs: 20, maxMs: 100 },
    requestTimeoutMs: 2_000,
    ...options,
  });
}

export interface HttpHarness {
  fake: FakeSlack;
  adapter: SlackAdapter;
  sink: RecordingSink;
  server: FastifyInstance;
  eventsUrl: string;
  commandsUrl: string;
  close(): Promise<void>;
}

/** The adapter's webhook on a real fastify server on a free port, its Web API on a fake Slack. */
export async function startHttpHarness(options: AdapterOverrides = {}): Promise<HttpHarness> {
  const fake = await startFakeSlack();
  const adapter = newAdapter(fake, {}, options);
  const sink = recordingSink();
  const server = Fastify();
  const webhook = adapter.webhook;
  if (!webhook) throw new Error('http mode should expose a webhook');
  await server.register(webhook);
  // A route outside the webhook plugin, to show its raw-body parsers stay inside the plugin.
  server.post('/echo-json', async (request) => ({ got: request.body }));
  const port = await freePort();
  await server.listen({ host: '127.0.0.1', port });
  await adapter.start(sink, [{ name: 'status', summary: 'show status' }]);
  const base = `http://127.0.0.1:${port}`;
  return {
    fake,
    adapter,
    sink,
    server,
    eventsUrl: `${base}/slack/events`,
    commandsUrl: `${base}/slack/commands`,
    async close() {
      await adapter.stop();
      await server.close();
      await fake.close();
    },
  };
}

/** Polls `check` until it is true or `timeoutMs` passes. */
export async function eventually(
  check: () => boolean,
  timeoutMs = 5_000,
  what = 'a condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
