import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisReachability } from '../../../src/core/redis/redis-reachability.js';
import { type WalRecord, WriteAheadLog } from '../../../src/core/redis/write-ahead-log.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { until } from '../../support/until.js';

const logger = pino({ level: 'silent' });

/** The write-ahead log on a real Redis that goes away and comes back. */
describe('the write-ahead log', () => {
  let redis: TestRedis;
  let client: Redis;
  let reachability: RedisReachability;

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis({ port: redis.port, maxRetriesPerRequest: 2, retryStrategy: () => 50 });
    client.on('error', () => {});
    reachability = new RedisReachability(client, logger);
    await until(() => reachability.reachable);
  });
  afterAll(async () => {
    reachability.close();
    client.disconnect();
    await redis.stop();
  });

  /** A log whose `push` records append their value to a Redis list, once per record id. */
  function open(dataDir: string, failing = new Set<string>()): WriteAheadLog {
    const wal = new WriteAheadLog({ dataDir, reachability, logger, maxApplyFailures: 3 });
    wal.handle('push', async (record: WalRecord) => {
      const { list, value } = record.data as { list: string; value: string };
      if (failing.has(value)) throw new Error(`refused ${value}`);
      // Idempotent, as every replayer must be: a record applied twice is stored once.
      if ((await client.set(`applied:${record.id}`, '1', 'NX')) === 'OK') await client.rpush(list, value);
    });
    return wal;
  }

  it('keeps writes made while Redis is away across a restart and replays them in order', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wal-'));
    await redis.down();
    await until(() => !reachability.reachable);
    const first = open(dataDir);
    first.open();
    expect(first.engaged).toBe(true);
    for (const value of ['a', 'b', 'c']) await first.append('push', { list: 'order', value });
    expect(first.pendingCount).toBe(3);
    await first.close();

    // The process restarts, still without Redis: the records are there.
    const second = open(dataDir);
    expect(second.open().map((r) => (r.data as { value: string }).value)).toEqual(['a', 'b', 'c']);
    await second.append('push', { list: 'order', value: 'd' });
    await redis.up();
    await until(() => second.pendingCount === 0);
    expect(second.engaged).toBe(false);
    expect(second.replayed).toBe(4);
    expect(await client.lrange('order', 0, -1)).toEqual(['a', 'b', 'c', 'd']);
    // Emptied on disk too: a later restart replays nothing again.
    await second.close();
    const third = open(dataDir);
    expect(third.open()).toEqual([]);
    await third.close();
  });

  it('sets a record Redis keeps refusing aside, reports it, and replays the ones after it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wal-'));
    const wal = open(dataDir, new Set(['bad']));
    wal.open();
    await redis.down();
    await until(() => !reachability.reachable);
    for (const value of ['x', 'bad', 'y']) await wal.append('push', { list: 'aside', value });
    await redis.up();
    await until(() => wal.pendingCount === 0, 20_000);
    expect(await client.lrange('aside', 0, -1)).toEqual(['x', 'y']);
    const rejectedPath = join(dataDir, 'redis-wal.rejected.log');
    expect(existsSync(rejectedPath)).toBe(true);
    const rejected = readFileSync(rejectedPath, 'utf8');
    expect(rejected).toContain('"value":"bad"');
    expect(rejected).toContain('refused bad');
    await wal.close();
  });

  it('takes no record without a replayer for its kind', async () => {
    const wal = open(mkdtempSync(join(tmpdir(), 'wal-')));
    wal.open();
    await expect(wal.append('unknown', {})).rejects.toThrow(/no replayer/);
    expect(wal.pendingCount).toBe(0);
    await wal.close();
  });
});
