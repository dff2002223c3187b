import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUMMARY_HEADING } from '../../src/core/context-window.js';
import { LogMemoryStore } from '../../src/core/memory/log-memory-store.js';
import { SUMMARY_INSTRUCTION } from '../../src/core/memory/memory-compaction-job.js';
import type { MemoryStore, Turn } from '../../src/core/memory/memory-store.js';
import { RedisMemoryStore } from '../../src/core/memory/redis-memory-store.js';
import { type FakeOpenAi, startFakeOpenAi, textOf } from '../fakes/fake-openai.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { postMessage, startTestAgent } from '../support/test-agent.js';

const logger = pino({ level: 'silent' });

async function until<T>(read: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

let redis: TestRedis;
const clients: Redis[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redis.stop();
});

interface StoreBackend {
  name: 'log' | 'redis';
  /** Opens a store on `scope`'s data (the same scope again: the same data, as after a restart). */
  open(scope: string): Promise<MemoryStore>;
}

const dataDirs = new Map<string, string>();
const backends: StoreBackend[] = [
  {
    name: 'log',
    open: async (scope) => {
      if (!dataDirs.has(scope)) dataDirs.set(scope, mkdtempSync(join(tmpdir(), 'agent-summary-')));
      const store = new LogMemoryStore({
        dataDir: dataDirs.get(scope) as string,
        retainTurns: 100,
        dedupeTtlSeconds: 3600,
        logger,
      });
      await store.open();
      return store;
    },
  },
  {
    name: 'redis',
    open: async (scope) => {
      const client = new Redis(redis.url, { maxRetriesPerRequest: 2 });
      clients.push(client);
      return new RedisMemoryStore({
        redis: client,
        keyPrefix: scope,
        retainTurns: 100,
        dedupeTtlSeconds: 3600,
        claimTtlMs: 5000,
      });
    },
  },
];

describe.each(backends)('memory summaries ($name)', (backend) => {
  let counter = 0;
  const scope = () => `summary-${backend.name}-${++counter}`;
  let at = 1_000;

  async function say(store: MemoryStore, personId: string, text: string): Promise<Turn> {
    at += 1000;
    const turn: Turn = { id: `t${at}`, personId, channel: 'http', user: text, assistant: `re ${text}`, at };
    await store.commit({ eventKey: `http:${personId}:${at}`, reply: turn.assistant, turn });
    return turn;
  }

  it('lists persons with unsummarised turns outside the window, and keeps summaries across a reopen', async () => {
    const name = scope();
    const store = await backend.open(name);
    const first = await say(store, 'ann', 'one');
    await say(store, 'ann', 'two');
    await say(store, 'bob', 'only');
    expect(await store.personsToCompact(2)).toEqual([]);
    await say(store, 'ann', 'three');
    expect(await store.personsToCompact(2)).toEqual(['ann']);

    expect(await store.saveSummary('ann', 'ann said one', first.at)).toBe(true);
    expect(await store.personsToCompact(2)).toEqual([]);
    // Not backwards: a summary reaching less far than the stored one is refused.
    expect(await store.saveSummary('ann', 'older', first.at - 1)).toBe(false);
    await store.close();

    const reopened = await backend.open(name);
    expect(await reopened.summary('ann')).toMatchObject({ text: 'ann said one', upToTurnAt: first.at });
    expect(await reopened.summary('bob')).toBeUndefined();
    await say(reopened, 'ann', 'four');
    expect(await reopened.personsToCompact(2)).toEqual(['ann']);
    await reopened.close();
  });

  it('drops the summary on /reset, and refuses one written for turns before the reset', async () => {
    const name = scope();
    const store = await backend.open(name);
    const first = await say(store, 'cat', 'one');
    await say(store, 'cat', 'two');
    expect(await store.saveSummary('cat', 'cat said one', first.at)).toBe(true);
    at += 1000;
    await store.commit({
      eventKey: `http:reset:${at}`,
      reply: 'ok',
      reset: { reset: true, personId: 'cat', at },
    });
    expect(await store.summary('cat')).toBeUndefined();
    // A compaction that read the turns before the reset and answers after it changes nothing.
    expect(await store.saveSummary('cat', 'stale', first.at + 1000)).toBe(false);
    expect(await store.summary('cat')).toBeUndefined();
    expect(await store.personsToCompact(0)).toEqual([]);
    await store.close();

    const reopened = await backend.open(name);
    expect(await reopened.summary('cat')).toBeUndefined();
    await reopened.close();
  });
});

describe.each([
  { backend: 'log', scope: 'node' },
  { backend: 'redis', scope: 'cluster' },
])('memory compaction through the agent ($backend)', ({ backend, scope }) => {
  let fake: FakeOpenAi;
  beforeAll(async () => {
    fake = await startFakeOpenAi();
  });
  afterAll(async () => {
    await fake.close();
  });

  it('summarises the turns past the window, and the next prompt carries the summary', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-compaction-'));
    writeFileSync(
      join(dataDir, 'agent.config.json'),
      JSON.stringify({ context: { maxTurns: 2 }, memory: { compaction: { enabled: true, everyMs: 1000 } } }),
    );
    const { agent, url } = await startTestAgent({
      DATA_DIR: dataDir,
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
      ...(backend === 'redis' ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'compaction-test' } : {}),
    });
    try {
      for (const text of ['one', 'two', 'three', 'four']) {
        const { body } = await postMessage(url, 'long', { text });
        expect(body.reply.text).toBe(`echo: ${text}`);
      }
      const personId = await agent.identity.resolve('http', 'long');
      const turns = await agent.memory.recentTurns(personId, 10);
      const two = turns.find((t) => t.user === 'two') as Turn;
      // Turns one and two are outside the window of two turns: the job summarises them.
      const summary = await until(async () => {
        const s = await agent.memory.summary(personId);
        return s && s.upToTurnAt === two.at ? s : undefined;
      });
      expect(summary.text).toContain('Person: one');
      expect(summary.text).toContain('Person: two');
      expect(summary.text).not.toContain('Person: three');

      const compactions = fake.requests.filter(
        (r) => textOf(r.body.messages[0]?.content ?? '') === SUMMARY_INSTRUCTION,
      );
      expect(compactions.length).toBeGreaterThanOrEqual(1);
      expect(compactions.flatMap((r) => r.body.messages.map((m) => textOf(m.content))).join('\n')).toContain(
        'Assistant: echo: one',
      );

      await postMessage(url, 'long', { text: 'five' });
      const prompt = fake.requests.at(-1)?.body.messages ?? [];
      expect(prompt[0]?.role).toBe('system');
      expect(textOf(prompt[0]?.content ?? '')).toContain(`${SUMMARY_HEADING}\n${summary.text}`);
      expect(prompt.slice(1).map((m) => textOf(m.content))).toEqual([
        'three',
        'echo: three',
        'four',
        'echo: four',
        'five',
      ]);

      const status = (await (await fetch(`${url}/api/status`)).json()) as { jobs: Record<string, unknown>[] };
      expect(status.jobs).toContainEqual(
        expect.objectContaining({
          name: 'memory-compaction',
          scope,
          lastOutcome: 'ok',
          consecutiveFailures: 0,
        }),
      );
      const command = await postMessage(url, 'long', { text: '/status' });
      expect(command.body.reply.text).toMatch(/jobs: .*memory-compaction ok .* ago/);
    } finally {
      await agent.stop();
    }
  });
});
