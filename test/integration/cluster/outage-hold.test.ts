import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fastify } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../../src/core/cluster/cluster.js';
import { CLUSTER_DEFAULTS } from '../../../src/core/cluster/cluster-config.js';
import { holdRequestSchema } from '../../../src/core/cluster/outage-holds.js';
import { RedisReachability } from '../../../src/core/redis/redis-reachability.js';
import { freePort } from '../../support/free-port.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { until } from '../../support/until.js';

const logger = pino({ level: 'silent' });
const TTL_MS = 800;
const TOKEN = 'outage-hold-test-token';

/** A TCP proxy in front of Redis for one node: cutting it takes Redis away from that node only. */
async function redisProxy(
  redisPort: number,
): Promise<{ port: number; cut(on: boolean): void; close(): void }> {
  let cut = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    if (cut) return socket.destroy();
    const upstream = tcpConnect(redisPort, '127.0.0.1');
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        socket.destroy();
        upstream.destroy();
      });
    }
    socket.pipe(upstream).pipe(socket);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    cut(on) {
      cut = on;
      if (on) for (const s of sockets) s.destroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

interface TestNode {
  cluster: Cluster;
  reachability: RedisReachability;
  /** Epoch ms intervals during which this node served the lease. */
  served: { from: number; to?: number }[];
  mesh: { close(): Promise<void>; blocked: boolean };
  stop(): Promise<void>;
}

/**
 * Two nodes holding a lease through a Redis outage: the holder keeps it while the other node
 * promises over the mesh (both cannot reach Redis), and steps down within its term when the other
 * can reach Redis (a partition) or cannot be asked, so two nodes never serve at once.
 */
describe('keeping a lease through a Redis outage on the peers promise', () => {
  let redis: TestRedis;
  const nodes: TestNode[] = [];
  const proxies: { close(): void }[] = [];
  let prefix = 0;
  let redisDown = false;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    for (const proxy of proxies.splice(0)) proxy.close();
    if (redisDown) await redis.up();
    redisDown = false;
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function node(name: string, keyPrefix: string, redisPort: number): Promise<TestNode> {
    const client = new Redis({ port: redisPort, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on('error', () => {});
    const reachability = new RedisReachability(client, logger);
    const meshPort = await freePort();
    const cluster = new Cluster({
      redis: client,
      keyPrefix,
      config: {
        ...CLUSTER_DEFAULTS,
        leaseTtlMs: TTL_MS,
        heartbeatEveryMs: 100,
        advertiseUrl: `http://127.0.0.1:${meshPort}`,
      },
      node: name,
      version: 'test',
      logger,
      reachability,
      meshToken: () => TOKEN,
    });
    const app = fastify();
    const mesh = { blocked: false, close: () => app.close() };
    app.post('/api/cluster/hold', async (request, reply) => {
      if (mesh.blocked) return reply.status(503).send({});
      if (request.headers.authorization !== `Bearer ${TOKEN}`) return reply.status(401).send({});
      return cluster.outageHolds?.promise(holdRequestSchema.parse(request.body));
    });
    await app.listen({ port: meshPort, host: '127.0.0.1' });
    const served: TestNode['served'] = [];
    const test: TestNode = {
      cluster,
      reachability,
      served,
      mesh,
      async stop() {
        await cluster.lease('channel:telegram').stop();
        await cluster.stop();
        reachability.close();
        client.disconnect();
        await mesh.close();
      },
    };
    await cluster.start();
    await cluster.lease('channel:telegram').start({
      acquired: async () => {
        served.push({ from: Date.now() });
      },
      lost: async () => {
        const last = served.at(-1);
        if (last) last.to = Date.now();
      },
    });
    nodes.push(test);
    return test;
  }

  async function twoNodes() {
    prefix += 1;
    const keyPrefix = `hold${prefix}`;
    const proxyA = await redisProxy(redis.port);
    const proxyB = await redisProxy(redis.port);
    proxies.push(proxyA, proxyB);
    const a = await node('a', keyPrefix, proxyA.port);
    const b = await node('b', keyPrefix, proxyB.port);
    // Both heartbeats seen by both, and one holder.
    await until(() => a.cluster.view().nodes.length === 2 && b.cluster.view().nodes.length === 2);
    await until(() => a.served.length + b.served.length === 1);
    const [holder, other, holderProxy, otherProxy] =
      a.served.length === 1 ? [a, b, proxyA, proxyB] : [b, a, proxyB, proxyA];
    return { holder, other, holderProxy, otherProxy };
  }

  it('keeps the lease past its TTL while Redis is away from both nodes and the other promises', async () => {
    const { holder, other } = await twoNodes();
    await redis.down();
    redisDown = true;
    await sleep(TTL_MS * 4);
    // Still held: the fencing check passes on the promise, without Redis.
    expect(holder.served.at(-1)?.to).toBeUndefined();
    expect(await holder.cluster.lease('channel:telegram').confirm()).toBe(true);
    expect(other.served).toEqual([]);

    await redis.up();
    redisDown = false;
    await sleep(TTL_MS * 3);
    // The holder's term is restored in Redis before the other may contend: still one holder.
    expect(holder.served).toHaveLength(1);
    expect(holder.served[0]?.to).toBeUndefined();
    expect(other.served).toEqual([]);
  });

  it('steps down within its term when the other node still reaches Redis, and never overlaps it', async () => {
    const { holder, other, holderProxy } = await twoNodes();
    const cutAt = Date.now();
    holderProxy.cut(true);
    await until(() => other.served.length === 1, 10_000);
    const gone = holder.served[0]?.to;
    const taken = other.served[0]?.from as number;
    expect(gone).toBeDefined();
    // The holder stopped serving before the other started: never two at once.
    expect(gone as number).toBeLessThanOrEqual(taken);
    expect(gone as number).toBeLessThanOrEqual(cutAt + TTL_MS + 300);
  });

  it('steps down within its term when the other node cannot be asked over the mesh', async () => {
    const { holder, other } = await twoNodes();
    other.mesh.blocked = true;
    await redis.down();
    redisDown = true;
    await until(() => holder.served[0]?.to !== undefined, 5000);
    expect(other.served).toEqual([]);
    expect(await holder.cluster.lease('channel:telegram').confirm()).toBe(false);
  });
});
