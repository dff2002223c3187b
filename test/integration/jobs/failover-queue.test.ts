import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/core/config/load-config.js';
import { redisConnectionOptions } from '../../../src/core/redis/redis-connection.js';
import { RedisReachability } from '../../../src/core/redis/redis-reachability.js';
import { BullMqDurableQueue } from '../../../src/jobs/bullmq-durable-queue.js';
import { createQueue } from '../../../src/jobs/create-queue.js';
import type { JobHandler, JobResult, QueuedJob } from '../../../src/jobs/durable-queue.js';
import { FailoverQueue } from '../../../src/jobs/failover-queue.js';
import { LocalDurableQueue } from '../../../src/jobs/local-durable-queue.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { until } from '../../support/until.js';

type Data = { n: number };

const logger = pino({ level: 'silent' });
const timing = { concurrency: 4, retryBaseMs: 20, retryMaxMs: 200 };

let redis: TestRedis;
let redisIsDown = false;
/** The agent's settings for Redis, from its config. */
let connection: RedisOptions;
let keyPrefix: string;
/** The agent's shared client, and whether it reaches Redis. */
let client: Redis;
let reachability: RedisReachability;
let counter = 0;

/** `promise`, or an error named `failure` if it takes longer than `ms`. */
async function within<T>(ms: number, promise: Promise<T>, failure: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(failure)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Records every run of every job, and answers with what the test scripted per job. */
function recorder(script: (job: QueuedJob<Data>) => JobResult | Promise<JobResult> = () => ({ done: true })) {
  const runs: QueuedJob<Data>[] = [];
  const handler: JobHandler<Data> = async (job) => {
    runs.push(job);
    return script(job);
  };
  const ran = (id: string) => runs.filter((r) => r.id === id);
  return { runs, handler, ran };
}

/** A failover queue as `createQueue` builds it, with its two parts at hand. */
function open(
  name: string,
  dataDir: string,
  reach = reachability,
  concurrency = timing.concurrency,
  replaying?: () => Promise<boolean>,
) {
  const options = { ...timing, concurrency, logger };
  const shared = new BullMqDurableQueue<Data>({ name, connection, prefix: `${keyPrefix}:bull`, ...options });
  const local = new LocalDurableQueue<Data>({ name: `${name}-outage`, dataDir, ...options });
  const queue = new FailoverQueue<Data>({
    shared,
    local,
    reachability: reach,
    redis: client,
    markerPrefix: `${keyPrefix}:bull:${name}:taken`,
    resumeAfterMs: 200,
    ...(replaying ? { replaying } : {}),
    logger,
  });
  return { shared, local, queue };
}

const newDataDir = () => mkdtempSync(join(tmpdir(), 'failover-queue-'));
const newName = () => `fq${++counter}-${Date.now()}`;

/** Whether BullMQ holds the job (waiting, or completed and kept for deduplication). */
async function inBullMq(name: string, id: string): Promise<boolean> {
  const admin = new Redis({ port: redis.port });
  try {
    // BullMQ's job hash; the queue escapes ":" in ids.
    return (await admin.exists(`${keyPrefix}:bull:${name}:${id.replace(/:/g, '%3A')}`)) === 1;
  } finally {
    admin.disconnect();
  }
}

async function redisDown(): Promise<void> {
  await redis.down();
  redisIsDown = true;
  await until(() => !reachability.reachable);
}

/**
 * Brings Redis back and waits until BullMQ serves this queue again: its queue answers (an add to
 * it while it still reconnects would fail, and `noteFailure` would mark Redis unreachable again)
 * and its worker runs a job (closing a BullMQ worker that is still reconnecting never finishes).
 */
async function redisUp(
  opened: ReturnType<typeof open>,
  ran: (id: string) => QueuedJob<Data>[],
): Promise<void> {
  await redis.up();
  redisIsDown = false;
  await until(() => reachability.reachable);
  await until(() =>
    opened.shared.pending().then(
      () => true,
      () => false,
    ),
  );
  const probe = `probe-${++counter}`;
  await opened.shared.add(probe, { n: -1 });
  await until(() => ran(probe).length > 0);
}

beforeAll(async () => {
  redis = await startRedis();
  const config = loadConfig({ env: { REDIS_URL: redis.url }, cwd: redis.dir });
  connection = redisConnectionOptions(config.redis) as RedisOptions;
  keyPrefix = config.redis.keyPrefix;
  // As create-agent.ts builds the shared client.
  client = new Redis({ ...connection, maxRetriesPerRequest: 2, connectTimeout: 3000 });
  client.on('error', () => {});
  reachability = new RedisReachability(client, logger);
  await until(() => reachability.reachable);
});

afterEach(async () => {
  // A failed test may leave Redis away; the next one starts with it up.
  if (redisIsDown) {
    await redis.up();
    redisIsDown = false;
  }
  await until(() => reachability.reachable);
});

afterAll(async () => {
  reachability.close();
  client.disconnect();
  await redis.stop();
});

describe('failover queue', () => {
  it('with Redis up, runs jobs through BullMQ once each, and a refused job is an error', async () => {
    const name = newName();
    const { queue, local } = open(name, newDataDir());
    const { runs, handler, ran } = recorder();
    await queue.start(handler);

    await queue.add('discord:a', { n: 1 });
    await until(() => runs.length >= 1);
    await queue.add('discord:a', { n: 2 });
    await sleep(150);
    expect(runs.map((r) => [r.id, r.data.n])).toEqual([['discord:a', 1]]);
    expect(await inBullMq(name, 'discord:a')).toBe(true);
    expect(local.has('discord:a')).toBe(false);
    expect(await queue.pending()).toBe(0);

    // BullMQ refuses an integer id: not a connection error, so it is not hidden in the local log.
    await expect(queue.add('42', { n: 3 })).rejects.toThrow(/cannot be integers/);
    expect(local.has('42')).toBe(false);
    expect(reachability.reachable).toBe(true);
    expect(ran('42')).toHaveLength(0);
    await queue.close();
  });

  it('with Redis down, takes the job into the local log and runs it; pending counts it', async () => {
    const name = newName();
    const dataDir = newDataDir();
    const opened = open(name, dataDir);
    const { queue, local } = opened;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { handler, ran } = recorder(async (job) => {
      if (job.id === 'telegram:b') await gate;
      return { done: true };
    });
    await queue.start(handler);
    await redisDown();

    await queue.add('telegram:b', { n: 1 });
    expect(local.has('telegram:b')).toBe(true);
    expect(readFileSync(join(dataDir, `${name}-outage.queue.log`), 'utf8')).toContain('"id":"telegram:b"');
    await until(() => ran('telegram:b').length === 1);
    // Running locally; BullMQ cannot be asked, and that is no error.
    expect(await queue.pending()).toBe(1);
    release();
    await until(async () => (await queue.pending()) === 0);
    expect(ran('telegram:b').map((r) => r.data.n)).toEqual([1]);

    await redisUp(opened, ran);
    expect(await inBullMq(name, 'telegram:b')).toBe(false);
    await queue.close();
  });

  it('does not run a job taken locally again when its id is added after Redis is back', async () => {
    const name = newName();
    const opened = open(name, newDataDir());
    const { queue } = opened;
    const { handler, ran } = recorder();
    await queue.start(handler);
    await redisDown();
    await queue.add('slack:c', { n: 1 });
    await until(() => ran('slack:c').length === 1);

    await redisUp(opened, ran);
    // The platform redelivers the event; the hub adds the same outbox id again.
    await queue.add('slack:c', { n: 2 });
    await queue.add('slack:d', { n: 3 });
    await until(() => ran('slack:d').length === 1);
    await sleep(150);
    expect(ran('slack:c').map((r) => r.data.n)).toEqual([1]);
    expect(await inBullMq(name, 'slack:c')).toBe(false);
    expect(await inBullMq(name, 'slack:d')).toBe(true);
    await queue.close();
  });

  it('does not run a job taken locally on one node when the other node adds its id after Redis is back', async () => {
    const name = newName();
    const nodeA = open(name, newDataDir());
    const nodeB = open(name, newDataDir());
    const a = recorder();
    const b = recorder();
    await nodeA.queue.start(a.handler);
    await nodeB.queue.start(b.handler);
    await redisDown();
    await nodeA.queue.add('telegram:9', { n: 1 });
    await until(() => a.ran('telegram:9').length === 1);

    // Either node's worker may run the probe job.
    await redisUp(nodeA, (id) => [...a.ran(id), ...b.ran(id)]);
    // Node A recorded in Redis what its local log took.
    await until(async () => (await client.exists(`${keyPrefix}:bull:${name}:taken:telegram:9`)) === 1);
    // Only node B's worker is left, so the check must come from Redis, not from A's log.
    await nodeA.queue.close();
    // The other node re-runs the event (its inbox job stalled at the outage) and adds the reply.
    await nodeB.queue.add('telegram:9', { n: 2 });
    await nodeB.queue.add('telegram:10', { n: 3 });
    await until(() => b.ran('telegram:10').length === 1);
    await sleep(150);
    expect([...a.ran('telegram:9'), ...b.ran('telegram:9')].map((r) => r.data.n)).toEqual([1]);
    await nodeB.queue.close();
  });

  it('after Redis returns, takes no BullMQ job while a node still replays its write-ahead log', async () => {
    const name = newName();
    let replaying = false;
    let asked = 0;
    const node = open(name, newDataDir(), reachability, timing.concurrency, async () => {
      asked += 1;
      return replaying;
    });
    const r = recorder();
    await node.queue.start(r.handler);
    await redisDown();
    replaying = true;
    await redis.up();
    redisIsDown = false;
    await until(() => reachability.reachable);
    await until(() =>
      node.shared.pending().then(
        () => true,
        () => false,
      ),
    );
    // A job in flight at the outage, re-run by BullMQ: it must wait for the replay.
    await node.shared.add('telegram:stalled', { n: 1 });
    await until(() => asked >= 2);
    await sleep(300);
    expect(r.ran('telegram:stalled')).toEqual([]);

    replaying = false;
    await until(() => r.ran('telegram:stalled').length === 1);
    await node.queue.close();
  });

  it('keeps a local job not yet run across a restart, which starts and runs it with Redis still away', async () => {
    const name = newName();
    const dataDir = newDataDir();
    // One job at a time, so a blocked job keeps the next one waiting.
    const first = open(name, dataDir, reachability, 1);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = recorder(async (job) => {
      if (job.id === 'discord:blocker') await gate;
      return { done: true };
    });
    await first.queue.start(before.handler);
    await redisDown();
    await first.queue.add('discord:blocker', { n: 1 });
    await first.queue.add('discord:kept', { n: 7 });
    await until(() => before.ran('discord:blocker').length === 1);
    expect(await first.queue.pending()).toBe(2);
    await redisUp(first, before.ran);
    const closed = first.queue.close();
    release();
    await closed;
    expect(before.ran('discord:kept')).toHaveLength(0);

    await redisDown();
    const second = open(name, dataDir);
    const after = recorder();
    // BullMQ's worker waits for Redis; the queue must not.
    await within(3000, second.queue.start(after.handler), 'start waited for Redis');
    await until(() => after.ran('discord:kept').length === 1);
    const [resumed] = after.ran('discord:kept');
    expect(resumed?.data).toEqual({ n: 7 });
    expect(resumed?.interrupted).toBe(true);
    expect(after.ran('discord:blocker')).toHaveLength(0);
    // New events keep coming in, though this BullMQ queue has never reached Redis.
    await within(3000, second.queue.add('discord:new', { n: 8 }), 'add waited for Redis');
    await until(() => after.ran('discord:new').length === 1);
    await until(async () => (await second.queue.pending()) === 0);

    // The worker started in the background serves BullMQ once Redis is back.
    await redisUp(second, after.ran);
    await second.queue.close();
  });

  it('takes a job locally when BullMQ fails although Redis was thought reachable', async () => {
    // The reachability watches another Redis, so it still says "reachable" when BullMQ's is gone.
    const other = await startRedis();
    const otherClient = new Redis({ port: other.port, maxRetriesPerRequest: 2 });
    otherClient.on('error', () => {});
    const otherReachability = new RedisReachability(otherClient, logger);
    try {
      await until(() => otherReachability.reachable);
      const name = newName();
      const opened = open(name, newDataDir(), otherReachability);
      const { handler, ran } = recorder();
      await opened.queue.start(handler);
      await redis.down();
      redisIsDown = true;
      // BullMQ cannot count its jobs: only the local ones are counted, and that is no error.
      expect(await opened.queue.pending()).toBe(0);
      expect(otherReachability.reachable).toBe(true);

      await opened.queue.add('http:e', { n: 1 });
      expect(opened.local.has('http:e')).toBe(true);
      expect(otherReachability.reachable).toBe(false);
      await until(() => ran('http:e').length === 1);

      await redisUp(opened, ran);
      await opened.queue.close();
    } finally {
      otherReachability.close();
      otherClient.disconnect();
      await other.stop();
    }
  });
});

describe('createQueue', () => {
  it('builds a failover queue given Redis and its reachability, else BullMQ or the local log', async () => {
    const dataDir = newDataDir();
    const deps = { dataDir, keyPrefix, logger, ...timing };
    expect(createQueue('plain', deps)).toBeInstanceOf(LocalDurableQueue);
    const shared = createQueue('shared', { ...deps, connection });
    expect(shared).toBeInstanceOf(BullMqDurableQueue);
    await shared.close();

    const name = newName();
    const failover = createQueue<Data>(name, {
      ...deps,
      connection,
      outage: { reachability, redis: client },
    });
    expect(failover).toBeInstanceOf(FailoverQueue);
    expect(failover.name).toBe(name);
    await failover.start(async () => ({ done: true }));
    // The outage log has its own file, apart from an embedded queue's `<name>.queue.log`.
    expect(existsSync(join(dataDir, `${name}-outage.queue.log`))).toBe(true);
    expect(existsSync(join(dataDir, `${name}.queue.log`))).toBe(false);
    await failover.close();
  });
});
