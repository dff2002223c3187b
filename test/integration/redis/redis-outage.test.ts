import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SnapshotFile } from '../../../src/core/redis/redis-snapshot.js';
import { type FakeOpenAi, startFakeOpenAi, textOf } from '../../fakes/fake-openai.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { postMessage, startTestAgent, type TestAgent } from '../../support/test-agent.js';

const PREFIX = 'outage-one';

interface Status {
  redis: { reachable: boolean; writeAheadPending: number; writeAheadReplayed: number };
}

/**
 * One agent on Redis, through a Redis outage: it keeps answering from its mirrors and its
 * write-ahead log, survives a restart during the outage, and replays every write exactly once
 * when Redis is back.
 */
describe('an agent on Redis while Redis is unreachable', { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let fake: FakeOpenAi;
  let agent: TestAgent | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'agent-outage-'));

  const env = () => ({
    DATA_DIR: dataDir,
    OPENAI_BASE_URL: fake.baseURL,
    OPENAI_MODEL: 'fake-model',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: PREFIX,
    NODE_ID: 'solo',
  });
  const say = async (text: string, eventId = `e-${text.replace(/\W/g, '-')}`) => {
    const { status, body } = await postMessage((agent as TestAgent).url, 'alice', { text, eventId });
    return { status, body };
  };
  const status = async () => (await (await fetch(`${(agent as TestAgent).url}/api/status`)).json()) as Status;
  const lastPrompt = () => {
    const request = fake.requests.at(-1);
    return (request?.body.messages ?? []).map((m) => `${m.role}: ${textOf(m.content)}`);
  };

  beforeAll(async () => {
    redis = await startRedis();
    fake = await startFakeOpenAi();
    agent = await startTestAgent(env());
  });
  afterAll(async () => {
    await agent?.agent.stop();
    await redis.stop();
    await fake.close();
  });

  it('answers with context, deduplicates, refuses linking, and replays each write once', async () => {
    expect((await say('before')).body.reply.text).toBe('echo: before');
    await redis.down();

    const during = await say('during');
    expect(during.status).toBe(200);
    expect(during.body.reply.text).toBe('echo: during');
    // The turn before the outage is context, read from the mirror.
    expect(lastPrompt()).toEqual(expect.arrayContaining(['user: before', 'assistant: echo: before']));
    // A retry of the same event is answered from the local record, not run again.
    const hits = fake.chatHits;
    const retry = await say('during');
    expect(retry.body).toMatchObject({ duplicate: true, reply: { text: 'echo: during' } });
    expect(fake.chatHits).toBe(hits);
    // Linking accounts needs Redis: refused with a code that says "try again".
    const link = await say('/link', 'e-link');
    expect(link.status).toBe(503);
    expect(link.body.error.code).toBe('memory_unavailable');

    // The context window's worth of history is at hand; a longer history waits for Redis.
    const base = (agent as TestAgent).url;
    const short = await fetch(`${base}/api/conversations/alice/messages?limit=20`);
    expect(((await short.json()) as { turns: { user: string }[] }).turns.map((t) => t.user)).toEqual([
      'before',
      'during',
    ]);
    const long = await fetch(`${base}/api/conversations/alice/messages?limit=100`);
    expect(long.status).toBe(503);
    expect(((await long.json()) as { error: { code: string } }).error.code).toBe('memory_unavailable');

    const outage = await status();
    expect(outage.redis.reachable).toBe(false);
    expect(outage.redis.writeAheadPending).toBeGreaterThan(0);
    const statusCommand = await say('/status', 'e-status');
    expect(statusCommand.body.reply.text).toMatch(
      /memory: Redis \(Redis unreachable since .*writes in the local log\)/,
    );

    // Restarted during the outage: the write-ahead log (and the snapshot) give back the context.
    await (agent as TestAgent).agent.stop();
    agent = await startTestAgent(env());
    expect(existsSync(join(dataDir, 'redis-wal.log'))).toBe(true);
    const afterRestart = await say('after restart');
    expect(afterRestart.body.reply?.text, JSON.stringify(afterRestart.body)).toBe('echo: after restart');
    expect(lastPrompt()).toEqual(
      expect.arrayContaining(['user: before', 'user: during', 'assistant: echo: during']),
    );

    await redis.up();
    const deadline = Date.now() + 15_000;
    let after = await status();
    while ((after.redis.writeAheadPending > 0 || !after.redis.reachable) && Date.now() < deadline) {
      await sleep(100);
      after = await status();
    }
    expect(after.redis).toMatchObject({ reachable: true, writeAheadPending: 0 });
    expect(after.redis.writeAheadReplayed).toBeGreaterThan(0);

    // Redis holds every turn once, in order, and knows the outage's events answered.
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      const stored = (await client.lrange(`${PREFIX}:mem:http:alice`, 0, -1)).map(
        (raw) => (JSON.parse(raw) as { user: string }).user,
      );
      expect(stored).toEqual(['before', 'during', 'after restart']);
      expect(await client.get(`${PREFIX}:evt:http:e-during`)).toBe('done:echo: during');
    } finally {
      client.disconnect();
    }
    const again = await say('during');
    expect(again.body).toMatchObject({ duplicate: true });
    // Linking works again.
    expect((await say('/link', 'e-link-2')).status).toBe(200);
  });

  it('a node that crashed and restarts during the outage serves from the snapshot the job saved', async () => {
    const snapshotDir = mkdtempSync(join(tmpdir(), 'agent-snapshot-'));
    const first = await startTestAgent({
      ...env(),
      DATA_DIR: snapshotDir,
      NODE_ID: 'snapshotting',
      REDIS_SNAPSHOT_EVERY_MS: '1000',
    });
    let second: TestAgent | undefined;
    try {
      for (const text of ['one', 'two'])
        expect((await postMessage(first.url, 'bob', { text, eventId: `s-${text}` })).status).toBe(200);
      // The redis-snapshot job writes the person's context window to disk.
      const path = join(snapshotDir, 'redis-snapshot.json');
      const deadline = Date.now() + 10_000;
      while (
        !(existsSync(path) && readFileSync(path, 'utf8').includes('"user":"two"')) &&
        Date.now() < deadline
      )
        await sleep(100);
      const saved = JSON.parse(readFileSync(path, 'utf8')) as SnapshotFile;
      expect(saved.memory.turns['http:bob']?.map((t) => t.user)).toEqual(['one', 'two']);

      // A crash: no graceful stop, so only what the job saved is on disk; a copy of that disk
      // starts while Redis is away.
      const crashedDisk = mkdtempSync(join(tmpdir(), 'agent-crashed-'));
      cpSync(path, join(crashedDisk, 'redis-snapshot.json'));
      await redis.down();
      second = await startTestAgent({ ...env(), DATA_DIR: crashedDisk, NODE_ID: 'restarted' });
      const { status, body } = await postMessage(second.url, 'bob', { text: 'three', eventId: 's-three' });
      expect(status).toBe(200);
      expect(body.reply.text).toBe('echo: three');
      expect(lastPrompt()).toEqual(
        expect.arrayContaining(['user: one', 'assistant: echo: one', 'user: two', 'assistant: echo: two']),
      );
    } finally {
      await second?.agent.stop();
      await first.agent.stop();
      await redis.up();
    }
  });
});
