import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../../src/core/cluster/cluster.js';
import { CLUSTER_DEFAULTS } from '../../../src/core/cluster/cluster-config.js';
import { LeaseKeeper } from '../../../src/core/cluster/lease-keeper.js';
import { RedisLease } from '../../../src/core/cluster/redis-lease.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';

const logger = pino({ level: 'silent' });
const TTL_MS = 600;

/** Records what a node does under the lease. */
function recorder() {
  const events: string[] = [];
  return {
    events,
    handlers: {
      acquired: async (term: { holder: { fence: number } }) => {
        events.push(`acquired ${term.holder.fence}`);
      },
      lost: async (reason: string) => {
        events.push(`lost: ${reason}`);
      },
    },
  };
}

async function until(what: string, probe: () => boolean, timeoutMs = 5000): Promise<number> {
  const started = Date.now();
  while (!probe()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - started;
}

describe('leases with fencing tokens on a real Redis', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const clusters: Cluster[] = [];
  let prefix = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await Promise.all(clusters.splice(0).map((c) => c.stop()));
    for (const client of clients.splice(0)) client.disconnect();
  });
  afterAll(async () => {
    await redis.stop();
  });

  /** One node: its own connection, as a separate server would have. */
  async function node(name: string, keyPrefix: string): Promise<{ cluster: Cluster; client: Redis }> {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    clients.push(client);
    const cluster = new Cluster({
      redis: client,
      keyPrefix,
      config: { ...CLUSTER_DEFAULTS, leaseTtlMs: TTL_MS, heartbeatEveryMs: 100 },
      node: name,
      version: 'test',
      logger,
    });
    clusters.push(cluster);
    await cluster.start();
    return { cluster, client };
  }

  async function twoNodes() {
    prefix += 1;
    const keyPrefix = `lease${prefix}`;
    const a = await node('a', keyPrefix);
    const b = await node('b', keyPrefix);
    return { a, b, keyPrefix };
  }

  it('gives the lease to one node only, and hands it over at once when the holder stops', async () => {
    const { a, b } = await twoNodes();
    const ra = recorder();
    const rb = recorder();
    const ka = a.cluster.lease('channel:telegram');
    const kb = b.cluster.lease('channel:telegram');
    await ka.start(ra.handlers);
    await kb.start(rb.handlers);
    expect(ra.events).toEqual(['acquired 1']);
    expect(rb.events).toEqual([]);
    expect(await ka.confirm()).toBe(true);
    expect(await kb.confirm()).toBe(false);

    // Still only one holder after several renewals.
    await sleep(TTL_MS * 2);
    expect(rb.events).toEqual([]);

    const stoppedAt = Date.now();
    await ka.stop();
    await until('b to take over', () => rb.events.length > 0);
    // The release is announced: b does not wait for the TTL.
    expect(Date.now() - stoppedAt).toBeLessThan(TTL_MS);
    expect(ra.events).toEqual(['acquired 1', 'lost: this node is stopping']);
    expect(rb.events).toEqual(['acquired 2']);
    expect(kb.term?.holder.node).toBe('b');
  });

  it('takes over after the TTL when the holder is cut off without releasing; the old holder steps down and is fenced out', async () => {
    const { a, b, keyPrefix } = await twoNodes();
    const ra = recorder();
    const rb = recorder();
    const ka = a.cluster.lease('channel:discord');
    const kb = b.cluster.lease('channel:discord');
    await ka.start(ra.handlers);
    await kb.start(rb.handlers);

    // "a" freezes: its connection stops answering, so it neither renews nor releases.
    const frozenAt = Date.now();
    a.client.disconnect(false);
    await until('b to take over', () => rb.events.length > 0, TTL_MS * 5);
    const tookMs = Date.now() - frozenAt;
    expect(tookMs).toBeGreaterThanOrEqual(TTL_MS / 2);
    expect(rb.events).toEqual(['acquired 2']);

    // "a" gave its term up by itself once it could not renew within the TTL...
    await until('a to step down', () => ra.events.length === 2, TTL_MS * 2);
    expect(ra.events).toEqual(['acquired 1', 'lost: not renewed within the lease TTL']);
    // ...and, back on Redis, its fencing check refuses it.
    await a.client.connect();
    expect(await ka.confirm()).toBe(false);
    expect(await kb.confirm()).toBe(true);
    const admin = new Redis(redis.url);
    try {
      expect(await admin.get(`${keyPrefix}:lease:channel:discord:fence`)).toBe('2');
    } finally {
      admin.disconnect();
    }
  });

  it('keeps the term through a Redis restart that outlived the TTL when nobody else acquired', async () => {
    const { a, keyPrefix } = await twoNodes();
    const ra = recorder();
    const ka: LeaseKeeper = a.cluster.lease('channel:slack');
    await ka.start(ra.handlers);
    expect(ra.events).toEqual(['acquired 1']);
    // The lease key is gone (as after a restart past its TTL); the fence counter is not.
    const admin = new Redis(redis.url);
    try {
      await admin.del(`${keyPrefix}:lease:channel:slack`);
      await sleep(TTL_MS);
      expect(ra.events).toEqual(['acquired 1']);
      expect(await ka.confirm()).toBe(true);
    } finally {
      admin.disconnect();
    }
  });

  it('takes nothing before start(), even when woken (Redis becoming ready)', async () => {
    const { a, keyPrefix } = await twoNodes();
    const keeper = a.cluster.lease('channel:early');
    keeper.wake();
    await sleep(100);
    const admin = new Redis(redis.url);
    try {
      expect(await admin.exists(`${keyPrefix}:lease:channel:early`)).toBe(0);
      const r = recorder();
      await keeper.start(r.handlers);
      expect(r.events).toEqual(['acquired 1']);
    } finally {
      admin.disconnect();
    }
  });

  it('a fencing check made by work that the loss is stopping does not wait for that loss', async () => {
    // The adapter's stop() waits for the events it has in hand, and each of those asks confirm():
    // confirm() must answer at once rather than wait for the loss that is waiting for it.
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    clients.push(client);
    let clock = Date.now();
    const keeper = new LeaseKeeper(
      new RedisLease(client, 'channel:inflight', {
        keyPrefix: `inflight${++prefix}`,
        ttlMs: TTL_MS,
        releasedChannel: 'released',
      }),
      { node: 'a', instance: 'i1', ttlMs: TTL_MS, logger, now: () => clock },
    );
    const events: string[] = [];
    let inHand: Promise<boolean> = Promise.resolve(true);
    await keeper.start({
      acquired: async () => {
        events.push('acquired');
      },
      lost: async (reason) => {
        events.push(`lost: ${reason}`);
        await inHand;
        events.push('stopped');
      },
    });
    // The term lapses (as in a pause or an outage) while an event is in hand.
    clock += TTL_MS * 10;
    inHand = keeper.confirm();
    expect(await inHand).toBe(false);
    await until('the loss to finish', () => events.includes('stopped'), 2000);
    expect(events).toEqual(['acquired', 'lost: not renewed within the lease TTL', 'stopped']);
    await keeper.stop();
  });

  it('lists both nodes and the holder in its view', async () => {
    const { a, b } = await twoNodes();
    await a.cluster.lease('channel:telegram').start(recorder().handlers);
    await b.cluster.lease('channel:telegram').start(recorder().handlers);
    await sleep(250);
    const view = b.cluster.view();
    expect(view.nodes.map((n) => [n.node, n.up, n.self])).toEqual([
      ['a', true, false],
      ['b', true, true],
    ]);
    expect(view.leases).toEqual([
      { name: 'channel:telegram', holder: expect.objectContaining({ node: 'a' }) },
    ]);
    await a.cluster.stop();
    await sleep(250);
    expect(b.cluster.view().nodes.find((n) => n.node === 'a')).toMatchObject({ up: false, stopped: true });
  });
});
