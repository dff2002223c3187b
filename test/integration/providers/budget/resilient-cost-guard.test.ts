import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reconnectDelayMs, reconnectOnReadonly } from '../../../../src/core/redis/redis-connection.js';
import { RedisReachability } from '../../../../src/core/redis/redis-reachability.js';
import { type WalRecord, WriteAheadLog } from '../../../../src/core/redis/write-ahead-log.js';
import {
  type BudgetConfigInput,
  budgetConfigSchema,
} from '../../../../src/providers/budget/budget-config.js';
import { BudgetExceededError, type ReserveInput } from '../../../../src/providers/budget/cost-guard.js';
import type { ThresholdEvent } from '../../../../src/providers/budget/ledger.js';
import { RedisCostGuard } from '../../../../src/providers/budget/redis-cost-guard.js';
import {
  type CostGuardState,
  InvalidCostDataError,
  ResilientCostGuard,
  WAL_APPLIED_TTL_MS,
} from '../../../../src/providers/budget/resilient-cost-guard.js';
import { startRedis, type TestRedis } from '../../../support/redis-server.js';
import { until } from '../../../support/until.js';

const logger = pino({ level: 'silent' });
const DAY_MS = 24 * 3_600_000;

const call = (estimatedUsd: number, extra: Partial<ReserveInput> = {}): ReserveInput => ({
  providerId: 'openai',
  model: 'gpt-4o-mini',
  personId: 'alice',
  channel: 'telegram',
  estimatedUsd,
  ...extra,
});
const spent = (usd: number) => ({ usd, inputTokens: 1000, outputTokens: 100 });

async function refusal(promise: Promise<unknown>): Promise<BudgetExceededError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BudgetExceededError);
  return error as BudgetExceededError;
}

interface TestNode {
  guard: ResilientCostGuard;
  inner: RedisCostGuard;
  wal: WriteAheadLog;
  reachability: RedisReachability;
  client: Redis;
  dataDir: string;
  /** What `wal.open()` returned. */
  leftInWal: WalRecord[];
  close(): Promise<void>;
}

describe('ResilientCostGuard on a real redis-server that goes away', () => {
  let redis: TestRedis;
  let redisDown = false;
  const nodes: TestNode[] = [];
  const dirs: string[] = [];
  let prefixes = 0;
  /** A fixed clock in the middle of a UTC day: no test straddles midnight by accident. */
  let clock = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.close();
    if (redisDown) await up();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'resilient-cost-'));
    dirs.push(dir);
    return dir;
  };

  /** One agent process's parts, wired as create-agent wires them. */
  async function startNode(options: {
    keyPrefix: string;
    budgets: BudgetConfigInput;
    nodeShare?: () => number;
    dataDir?: string;
    events?: ThresholdEvent[];
    /** Wait for the connection (false when starting during an outage). */
    connected?: boolean;
  }): Promise<TestNode> {
    const client = new Redis({
      port: redis.port,
      retryStrategy: reconnectDelayMs,
      reconnectOnError: reconnectOnReadonly,
      maxRetriesPerRequest: 2,
      connectTimeout: 3000,
    });
    client.on('error', () => {});
    const now = () => clock;
    const budgets = budgetConfigSchema.parse(options.budgets);
    const reachability = new RedisReachability(client, logger, now);
    const dataDir = options.dataDir ?? tempDir();
    const wal = new WriteAheadLog({ dataDir, reachability, logger, now });
    const inner = new RedisCostGuard({ redis: client, keyPrefix: options.keyPrefix, budgets, now });
    const guard = new ResilientCostGuard({
      inner,
      redis: client,
      keyPrefix: options.keyPrefix,
      wal,
      reachability,
      budgets,
      nodeShare: options.nodeShare ?? (() => 1),
      logger,
      now,
      ...(options.events ? { onThreshold: (e: ThresholdEvent) => options.events?.push(e) } : {}),
    });
    const leftInWal = wal.open();
    if (options.connected !== false)
      await until(() => reachability.reachable, 15_000, 'the client is connected');
    await guard.open();
    const node: TestNode = {
      guard,
      inner,
      wal,
      reachability,
      client,
      dataDir,
      leftInWal,
      async close() {
        await guard.close();
        await wal.close();
        reachability.close();
        client.disconnect();
      },
    };
    nodes.push(node);
    return node;
  }

  async function down(...watching: TestNode[]): Promise<void> {
    redisDown = true;
    await redis.down();
    await until(() => watching.every((n) => !n.reachability.reachable), 15_000, 'the nodes see Redis gone');
  }

  async function up(...watching: TestNode[]): Promise<void> {
    await redis.up();
    redisDown = false;
    await until(
      () => watching.every((n) => n.reachability.reachable && n.wal.pendingCount === 0),
      15_000,
      'the nodes have replayed their WAL',
    );
  }

  const prefix = () => `resilient-test-${++prefixes}`;
  const globalDay = (snapshot: Awaited<ReturnType<RedisCostGuard['snapshot']>>) =>
    snapshot.budgets.find((b) => b.scope === 'global' && b.period === 'day');

  beforeEach(() => {
    const today = new Date();
    clock = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 10, 12);
  });

  it('sends every call to Redis while it answers', async () => {
    const node = await startNode({ keyPrefix: prefix(), budgets: { global: { dailyUsd: 1 } } });
    const peer = await startNode({
      keyPrefix: `resilient-test-${prefixes}`,
      budgets: { global: { dailyUsd: 1 } },
    });
    const held = await node.guard.reserve(call(0.3));
    // Redis holds the reservation, so the other node sees it.
    expect(globalDay(await peer.inner.snapshot())).toMatchObject({ spentUsd: 0, reservedUsd: 0.3 });
    expect(await refusal(peer.guard.reserve(call(0.71)))).toMatchObject({ scope: 'global', period: 'day' });
    await node.guard.settle(held, spent(0.25));
    expect(globalDay(await peer.inner.snapshot())).toMatchObject({ spentUsd: 0.25, reservedUsd: 0 });
    await node.guard.release(await node.guard.reserve(call(0.5)));
    expect(globalDay(await peer.inner.snapshot())).toMatchObject({ spentUsd: 0.25, reservedUsd: 0 });
    // Nothing went through the write-ahead log.
    expect(node.wal.pendingCount).toBe(0);
    expect(node.wal.replayed).toBe(0);
    expect(await node.guard.snapshot()).toEqual(await node.inner.snapshot());
  });

  it('spends only its share of what was left while Redis is away, and fails closed on what it never read', async () => {
    const keyPrefix = prefix();
    const budgets = { global: { dailyUsd: 1 } };
    const node = await startNode({ keyPrefix, budgets });
    await node.guard.settle(await node.guard.reserve(call(0.2)), spent(0.2));
    await node.guard.refresh();
    expect(node.guard.exportState()?.rows).toContainEqual(
      expect.objectContaining({
        dimension: 'global',
        period: 'day',
        values: expect.objectContaining({ usdMicros: 200_000 }),
      }),
    );

    await down(node);
    // Nothing to read, and no error for it.
    await expect(node.guard.refresh()).resolves.toBeUndefined();
    // 0.8 was left, and this node is alone: it may spend 0.8.
    const a = await node.guard.reserve(call(0.5));
    await node.guard.settle(a, spent(0.4));
    expect(node.wal.pendingCount).toBe(1);
    const b = await node.guard.reserve(call(0.3));
    // 0.4 spent + 0.3 reserved + 0.2 > 0.8.
    expect(await refusal(node.guard.reserve(call(0.2)))).toMatchObject({
      scope: 'global',
      period: 'day',
      limitUsd: 1,
      subject: 'global',
    });
    // Exactly up to the allowance passes.
    await node.guard.release(await node.guard.reserve(call(0.1)));
    await node.guard.release(b);
    const c = await node.guard.reserve(call(0.4));
    await refusal(node.guard.reserve(call(0.01)));
    // Free calls always pass.
    await expect(node.guard.reserve(call(0))).resolves.toBeDefined();
    // The snapshot is built from the last reading plus the outage.
    const local = await node.guard.snapshot();
    expect(globalDay(local)).toMatchObject({ spentUsd: 0.6, reservedUsd: 0.4 });
    expect(local.total).toMatchObject({ dayUsd: 0.6, dayRequests: 2, dayInputTokens: 2000 });
    expect(local.persons.alice).toMatchObject({ dayUsd: 0.6 });
    await node.guard.release(c);

    // A node that starts now has read nothing: capped calls are refused, uncapped ones pass.
    const fresh = await startNode({
      keyPrefix,
      budgets: { perProvider: { openai: { dailyUsd: 1 } } },
      connected: false,
    });
    expect(fresh.reachability.reachable).toBe(false);
    expect(await refusal(fresh.guard.reserve(call(0.01)))).toMatchObject({
      scope: 'provider',
      subject: 'openai',
    });
    await expect(fresh.guard.reserve(call(5, { providerId: 'anthropic' }))).resolves.toBeDefined();
    await expect(fresh.guard.reserve(call(0))).resolves.toBeDefined();
    expect(await fresh.guard.snapshot()).toMatchObject({ total: { dayUsd: 0 } });
  });

  it('replays the outage spend into Redis exactly once, even when the same records are replayed again', async () => {
    const keyPrefix = prefix();
    const budgets = { global: { dailyUsd: 1 } };
    const node = await startNode({ keyPrefix, budgets });
    await node.guard.settle(await node.guard.reserve(call(0.2)), spent(0.2));
    // Reserved in Redis before the outage, settled during it.
    const inFlight = await node.guard.reserve(call(0.2));
    await node.guard.refresh();
    expect(globalDay(await node.inner.snapshot())).toMatchObject({ spentUsd: 0.2, reservedUsd: 0.2 });

    await down(node);
    await node.guard.settle(await node.guard.reserve(call(0.3)), spent(0.25));
    await node.guard.settle(await node.guard.reserve(call(0.2, { personId: 'bob' })), spent(0.15));
    await node.guard.settle(inFlight, spent(0.1));
    expect(node.wal.pendingCount).toBe(3);
    // What a process that died before the replay rewrote its log would find on restart.
    const copy = tempDir();
    copyFileSync(join(node.dataDir, 'redis-wal.log'), join(copy, 'redis-wal.log'));

    await up(node);
    expect(node.wal.replayed).toBe(3);
    const afterReplay = await node.inner.snapshot();
    // The estimate of the Redis reservation is gone, replaced by its cost: 0.2 + 0.25 + 0.15 + 0.1.
    expect(globalDay(afterReplay)).toMatchObject({ spentUsd: 0.7, reservedUsd: 0 });
    expect(afterReplay.total).toMatchObject({ dayRequests: 4, dayInputTokens: 4000 });
    expect(afterReplay.persons).toMatchObject({ alice: { dayUsd: 0.55 }, bob: { dayUsd: 0.15 } });

    // The same three records, replayed by a restarted process.
    const restarted = await startNode({ keyPrefix, budgets, dataDir: copy });
    expect(restarted.leftInWal).toHaveLength(3);
    await until(() => restarted.wal.pendingCount === 0, 15_000, 'the copy is replayed');
    expect(restarted.wal.replayed).toBe(3);
    expect(await restarted.inner.snapshot()).toEqual(afterReplay);
    for (const record of restarted.leftInWal) {
      const ttl = await restarted.client.pttl(`${keyPrefix}:wal-applied:${record.id}`);
      expect(ttl).toBeGreaterThan(WAL_APPLIED_TTL_MS - 60_000);
      expect(ttl).toBeLessThanOrEqual(WAL_APPLIED_TTL_MS);
    }

    // Calls go to Redis again...
    const r = await node.guard.reserve(call(0.1));
    expect(globalDay(await node.inner.snapshot())).toMatchObject({ spentUsd: 0.7, reservedUsd: 0.1 });
    await node.guard.release(r);
    // ...and a second outage hands out only what is left after the first (0.3, or less while a
    // reading still holds a reservation since released), not the 0.6 the pre-outage reading left.
    await down(node, restarted);
    await node.guard.release(await node.guard.reserve(call(0.2)));
    await refusal(node.guard.reserve(call(0.31)));
  });

  it('splits what is left between the nodes, with the share fixed when the outage began', async () => {
    const keyPrefix = prefix();
    const budgets = { global: { dailyUsd: 1 } };
    let share = 2;
    const a = await startNode({ keyPrefix, budgets, nodeShare: () => share });
    const b = await startNode({ keyPrefix, budgets, nodeShare: () => share });
    await a.guard.settle(await a.guard.reserve(call(0.2)), spent(0.2));
    await a.guard.refresh();
    await b.guard.refresh();

    await down(a, b);
    // The peer went quiet and the cluster now counts one node: the shares stay halves.
    share = 1;
    // 0.8 was left: 0.4 each.
    const ra = await a.guard.reserve(call(0.4));
    await refusal(a.guard.reserve(call(0.01)));
    await a.guard.settle(ra, spent(0.4));
    await refusal(a.guard.reserve(call(0.01)));
    await b.guard.settle(await b.guard.reserve(call(0.3)), spent(0.3));
    await b.guard.settle(await b.guard.reserve(call(0.1)), spent(0.1));
    expect(await refusal(b.guard.reserve(call(0.01)))).toMatchObject({ scope: 'global', limitUsd: 1 });

    await up(a, b);
    // Together they spent exactly the cap, and Redis holds every cent once.
    expect(globalDay(await a.inner.snapshot())).toMatchObject({ spentUsd: 1, reservedUsd: 0 });
    await refusal(a.guard.reserve(call(0.01)));
  });

  it('counts a person Redis has no spend for as 0, and a reading of an earlier day as 0 for today', async () => {
    const keyPrefix = prefix();
    const budgets = { global: { dailyUsd: 1, monthlyUsd: 1.5 }, perPerson: { dailyUsd: 0.5 } };
    const node = await startNode({ keyPrefix, budgets });
    await node.guard.settle(await node.guard.reserve(call(0.4)), spent(0.4));
    await node.guard.refresh();

    await down(node);
    // Alice had spent 0.4 of her 0.5; Bob had spent nothing.
    await refusal(node.guard.reserve(call(0.11)));
    await node.guard.release(await node.guard.reserve(call(0.1)));
    const bob = await node.guard.reserve(call(0.5, { personId: 'bob' }));
    await node.guard.settle(bob, spent(0.5));
    // Next day, Redis still away: the daily caps start again, the monthly one does not (1.5 - 0.9).
    clock += DAY_MS;
    expect(await refusal(node.guard.reserve(call(0.61, { personId: 'carol' })))).toMatchObject({
      scope: 'global',
      period: 'month',
    });
    await node.guard.settle(await node.guard.reserve(call(0.5)), spent(0.5));
    expect(await refusal(node.guard.reserve(call(0.01)))).toMatchObject({ scope: 'person', period: 'day' });
  });

  it('survives a restart during the outage: saved values are imported and the unreplayed spend still counts', async () => {
    const keyPrefix = prefix();
    const budgets = { global: { dailyUsd: 1 } };
    const first = await startNode({ keyPrefix, budgets });
    await first.guard.settle(await first.guard.reserve(call(0.2)), spent(0.2));
    await first.guard.refresh();
    const saved = JSON.parse(JSON.stringify(first.guard.exportState())) as CostGuardState;
    expect(saved).toMatchObject({ readAt: clock });
    expect(saved.rows).toContainEqual(
      expect.objectContaining({
        dimension: 'global',
        period: 'day',
        values: expect.objectContaining({ usdMicros: 200_000 }),
      }),
    );

    await down(first);
    await first.guard.settle(await first.guard.reserve(call(0.5)), spent(0.5));
    await first.close();
    nodes.splice(nodes.indexOf(first), 1);

    // The same data directory, started while Redis is still away.
    const second = await startNode({ keyPrefix, budgets, dataDir: first.dataDir, connected: false });
    await refusal(second.guard.reserve(call(0.01)));
    expect(() => second.guard.importState({ ...saved, day: 'yesterday' })).toThrow(InvalidCostDataError);
    expect(second.guard.importState(saved)).toBe(true);
    // Older values do not replace newer ones.
    expect(second.guard.importState({ ...saved, readAt: saved.readAt - 1 })).toBe(false);
    expect(second.leftInWal).toHaveLength(1);
    second.guard.restorePending(second.leftInWal);
    // 0.8 was left and 0.5 of it is spent, though not yet in Redis.
    await second.guard.release(await second.guard.reserve(call(0.3)));
    await refusal(second.guard.reserve(call(0.31)));

    await up(second);
    expect(globalDay(await second.inner.snapshot())).toMatchObject({ spentUsd: 0.7, reservedUsd: 0 });
  });

  it('reports thresholds this node passes during the outage once', async () => {
    const keyPrefix = prefix();
    const events: ThresholdEvent[] = [];
    const node = await startNode({ keyPrefix, budgets: { global: { dailyUsd: 1 } }, events });
    await node.guard.settle(await node.guard.reserve(call(0.5)), spent(0.5));
    await node.guard.refresh();
    await down(node);
    await node.guard.settle(await node.guard.reserve(call(0.2)), spent(0.2));
    expect(events).toEqual([]);
    await node.guard.settle(await node.guard.reserve(call(0.2)), spent(0.2));
    expect(events).toMatchObject([{ scope: 'global', period: 'day', level: 'warn', spentUsd: 0.9 }]);
    await node.guard.settle(await node.guard.reserve(call(0.1)), spent(0.05));
    expect(events).toHaveLength(1);
  });
});
