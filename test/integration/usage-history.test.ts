import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/core/metrics.js';
import { BUCKET_MS, BUCKETS, UsageHistory } from '../../src/core/usage-history.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const HOUR = 3_600_000;
/** A bucket boundary, so "+ n buckets" lands exactly where the test means. */
const T0 = Math.floor(Date.UTC(2026, 0, 10, 12) / BUCKET_MS) * BUCKET_MS;

function clock(start: number) {
  const c = { at: start, now: () => c.at };
  return c;
}

describe('UsageHistory (this node only)', () => {
  it('counts requests, errors and cost in 5-minute buckets, the current one last', () => {
    const c = clock(T0 + 1000);
    const history = new UsageHistory({ now: c.now });
    history.onRequest('a');
    history.onRequest('a');
    history.onError('a');
    history.onUsage('a', { usd: 0.25 });
    history.onRequest('b');
    c.at = T0 + BUCKET_MS + 10; // the next bucket
    history.onRequest('a');
    history.onUsage('a', { usd: 0.5 });

    const series = history.localSeries();
    expect(series.source).toBe('node');
    expect(series.bucketMs).toBe(BUCKET_MS);
    expect(series.from).toBe(T0 + BUCKET_MS - (BUCKETS - 1) * BUCKET_MS);
    const a = series.providers.a;
    expect(a?.requests).toHaveLength(BUCKETS);
    expect(a?.requests.slice(-2)).toEqual([2, 1]);
    expect(a?.errors.slice(-2)).toEqual([1, 0]);
    expect(a?.costUsd.slice(-2)).toEqual([0.25, 0.5]);
    expect(a?.requests.reduce((x, y) => x + y)).toBe(3);
    expect(series.providers.b?.requests.slice(-2)).toEqual([1, 0]);
  });

  it('keeps 24 hours: a bucket leaves the window 24 h later, and its ring slot is reused cleanly', () => {
    const c = clock(T0);
    const history = new UsageHistory({ now: c.now });
    history.onRequest('a');
    c.at = T0 + 23 * HOUR;
    history.onRequest('a');
    // 24 h minus one bucket later: T0's bucket is the oldest still shown.
    c.at = T0 + 24 * HOUR - BUCKET_MS;
    let line = history.localSeries().providers.a;
    expect(line?.requests[0]).toBe(1);
    expect(line?.requests.reduce((x, y) => x + y)).toBe(2);
    // One bucket on, it has left the window.
    c.at = T0 + 24 * HOUR;
    line = history.localSeries().providers.a;
    expect(line?.requests.reduce((x, y) => x + y)).toBe(1);
    // T0 + 24 h maps to the same ring slot as T0: the new count does not add to the old one.
    history.onRequest('a');
    line = history.localSeries().providers.a;
    expect(line?.requests.at(-1)).toBe(1);
    expect(line?.requests.reduce((x, y) => x + y)).toBe(2);
  });

  it('is fed by AgentMetrics through forwardTo', () => {
    const c = clock(T0);
    const history = new UsageHistory({ now: c.now });
    const metrics = new AgentMetrics();
    metrics.forwardTo(history);
    metrics.onRequest('p');
    metrics.onError('p', 'server_error');
    metrics.onUsage('p', { inputTokens: 10, outputTokens: 20, usd: 0.125 });
    const line = history.localSeries().providers.p;
    expect(line?.requests.at(-1)).toBe(1);
    expect(line?.errors.at(-1)).toBe(1);
    expect(line?.costUsd.at(-1)).toBe(0.125);
  });
});

describe('UsageHistory with Redis (the cluster totals)', () => {
  let server: TestRedis;
  let one: Redis;
  let two: Redis;
  beforeAll(async () => {
    server = await startRedis();
    one = new Redis(server.url);
    two = new Redis(server.url);
  });
  afterAll(async () => {
    one?.disconnect();
    two?.disconnect();
    await server?.stop();
  });

  it('adds two writers together, per bucket, with a 25 h TTL', async () => {
    const prefix = `t${Date.now()}`;
    const c = clock(T0 + 1000);
    const nodeA = new UsageHistory({ redis: { client: one, keyPrefix: prefix }, now: c.now });
    const nodeB = new UsageHistory({ redis: { client: two, keyPrefix: prefix }, now: c.now });
    nodeA.onRequest('primary');
    nodeA.onUsage('primary', { usd: 0.1 });
    nodeB.onRequest('primary');
    nodeB.onRequest('primary');
    nodeB.onError('primary');
    nodeB.onUsage('primary', { usd: 0.2 });
    c.at = T0 + 2 * BUCKET_MS;
    nodeA.onRequest('secondary');
    await Promise.all([nodeA.flush(), nodeB.flush()]);

    const key = `${prefix}:usage:${T0 / BUCKET_MS}`;
    const ttl = await one.ttl(key);
    expect(ttl).toBeGreaterThan(25 * 3600 - 10);
    expect(ttl).toBeLessThanOrEqual(25 * 3600);

    for (const history of [nodeA, nodeB]) {
      const series = await history.series();
      expect(series.source).toBe('cluster');
      expect(series.unavailable).toBeUndefined();
      const primary = series.providers.primary;
      // The current bucket is last; the writes were two buckets earlier.
      expect(primary?.requests.slice(-3)).toEqual([3, 0, 0]);
      expect(primary?.errors.slice(-3)).toEqual([1, 0, 0]);
      expect(primary?.costUsd.at(-3)).toBeCloseTo(0.3, 10);
      expect(series.providers.secondary?.requests.slice(-3)).toEqual([0, 0, 1]);
    }
    // Each node's own ring holds only its own counts.
    expect(nodeA.localSeries().providers.primary?.requests.at(-3)).toBe(1);
    expect(nodeB.localSeries().providers.primary?.requests.at(-3)).toBe(2);

    // 24 h later the buckets are out of the window even if Redis still holds them.
    c.at = T0 + 24 * HOUR;
    const later = await nodeA.series();
    // Only buckets inside the window are read: primary's bucket is gone, secondary's is the oldest.
    expect(later.providers.primary).toBeUndefined();
    expect(later.providers.secondary?.requests[0]).toBe(0);
    expect(later.providers.secondary?.requests.reduce((x, y) => x + y)).toBe(1);
  });

  it('falls back to this node while Redis counts as unreachable, and writes nothing to it', async () => {
    const prefix = `u${Date.now()}`;
    let reachable = false;
    const history = new UsageHistory({
      redis: { client: one, keyPrefix: prefix, reachable: () => reachable },
      now: () => T0,
    });
    history.onRequest('a');
    await history.flush();
    const series = await history.series();
    expect(series.source).toBe('node');
    expect(series.unavailable).toBe('Redis is unreachable');
    expect(series.providers.a?.requests.at(-1)).toBe(1);
    expect(await one.keys(`${prefix}:*`)).toEqual([]);
    reachable = true;
    expect((await history.series()).providers.a).toBeUndefined();
  });
});
