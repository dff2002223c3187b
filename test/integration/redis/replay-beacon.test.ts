import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisReachability } from '../../../src/core/redis/redis-reachability.js';
import { ReplayBeacon } from '../../../src/core/redis/replay-beacon.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { until } from '../../support/until.js';

const logger = pino({ level: 'silent' });
let redis: TestRedis;
const clients: Redis[] = [];
const reachabilities: RedisReachability[] = [];

function node(id: string, pending: () => number, now?: () => number) {
  const client = new Redis({ port: redis.port, maxRetriesPerRequest: 2, connectTimeout: 3000 });
  client.on('error', () => {});
  clients.push(client);
  const reachability = new RedisReachability(client, logger);
  reachabilities.push(reachability);
  const beacon = new ReplayBeacon({
    redis: client,
    keyPrefix: 'beacon-test',
    node: id,
    reachability,
    pending,
    logger,
    ...(now ? { now } : {}),
  });
  return { client, reachability, beacon };
}

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const r of reachabilities) r.close();
  for (const c of clients) c.disconnect();
  await redis.stop();
});

describe('replay beacon', () => {
  it('tells the other nodes while this node still has writes to replay, and stops when it has none', async () => {
    let pendingA = 0;
    const a = node('a', () => pendingA);
    const b = node('b', () => 0);
    await until(() => a.reachability.reachable && b.reachability.reachable);
    a.beacon.start();
    b.beacon.start();
    try {
      expect(await b.beacon.anyReplaying()).toBe(false);

      // A's log holds writes (as after an outage): B sees it within a beat.
      pendingA = 3;
      expect(await a.beacon.anyReplaying()).toBe(true);
      await until(() => b.beacon.anyReplaying(), 5000, "B sees A's replay");

      // Replayed: the mark is cleared at the next beat.
      pendingA = 0;
      await until(async () => !(await b.beacon.anyReplaying()), 5000, "A's mark cleared");
      expect(await a.client.hexists('beacon-test:wal-replaying', 'a')).toBe(0);
    } finally {
      a.beacon.stop();
      b.beacon.stop();
    }
  });

  it('a mark not renewed (its node died mid-replay) stops counting after its lifetime', async () => {
    let clock = Date.now();
    const b = node(
      'b2',
      () => 0,
      () => clock,
    );
    await until(() => b.reachability.reachable);
    await b.client.hset('beacon-test:wal-replaying', 'dead-node', String(clock + 5000));
    expect(await b.beacon.anyReplaying()).toBe(true);
    clock += 5001;
    expect(await b.beacon.anyReplaying()).toBe(false);
  });
});
