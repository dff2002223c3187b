import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterHarness,
  EXCLUSIVE,
  PLATFORMS,
  type Platform,
  redisUrlTarget,
} from '../support/cluster-harness.js';
import { createNodeNetwork, LOOPBACK, type NodeNetwork } from '../support/netns.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const OUTAGE_MS = 30_000;
const KEY_PREFIX = 'outage';

interface RedisStatus {
  redis?: { reachable: boolean; writeAheadPending: number; writeAheadReplayed: number };
}

/**
 * Redis stopped for 30 s under traffic on every channel, then started again. The nodes keep
 * answering throughout: writes go to each node's write-ahead log, the node holding the platform
 * connections keeps them because the other node promises over the mesh that it cannot take them
 * either, and once Redis is back both logs replay into it. Nothing is lost, nothing is answered
 * twice, no platform is ever served by both nodes, and every answered message is stored in
 * Redis's memory exactly once.
 */
describe('two nodes while Redis is stopped for 30 s', { timeout: 180_000 }, () => {
  let network: NodeNetwork;
  let redis: TestRedis;
  let harness: ClusterHarness;

  beforeAll(async () => {
    network = createNodeNetwork(['a', 'b']);
    redis = await startRedis(network === LOOPBACK ? {} : { alsoBind: network.hostAddress });
    harness = await ClusterHarness.start({
      redis: redisUrlTarget(redis.urlOn(network.hostAddress)),
      keyPrefix: KEY_PREFIX,
      network,
    });
  });
  afterAll(async () => {
    await harness?.stop();
    await redis?.stop();
    network?.destroy();
  });

  it('keeps answering from the local log, replays it afterwards, and loses or doubles nothing', async () => {
    const owner = await harness.startBothWithTraffic();
    const downAt = Date.now();
    await redis.down();
    await sleep(OUTAGE_MS);
    const during = harness.answeredWithin(downAt, Date.now());
    const outageStatus = await harness.api<RedisStatus>(harness.node(owner), '/api/status');
    await redis.up();
    const upAt = Date.now();
    await sleep(5000);
    await harness.stopTraffic(90_000);

    const counts = harness.counts();
    const resent = await harness.resent();
    console.info(
      `[redis outage ${OUTAGE_MS} ms] answered during it ${JSON.stringify(during)}; counts ${JSON.stringify(counts)}; resent ${JSON.stringify(resent)}; holders after ${JSON.stringify(await harness.holders())}; duplicates (ms after Redis stopped) ${JSON.stringify(harness.duplicates().map((d) => ({ text: d.text, at: d.times.map((t) => t - downAt) })))}, Redis back at ${upAt - downAt} ms`,
    );

    // During the outage the holder said so, and had writes waiting for Redis.
    expect(outageStatus.redis?.reachable).toBe(false);
    expect(outageStatus.redis?.writeAheadPending).toBeGreaterThan(0);
    // Every channel kept answering during the outage (messages of its last seconds may still be
    // in flight when it ends).
    for (const platform of PLATFORMS) {
      expect(during[platform].sent, `${platform} sent during the outage`).toBeGreaterThan(50);
      expect(during[platform].answered, `${platform} answered during the outage`).toBeGreaterThan(
        during[platform].sent * 0.8,
      );
    }
    for (const [platform, count] of Object.entries(counts) as [Platform, (typeof counts)[Platform]][]) {
      expect(count.sent, `${platform} sent`).toBeGreaterThan(0);
      expect({ platform, lost: count.lost }).toEqual({ platform, lost: 0 });
      expect(count.duplicated, `${platform} duplicates`).toBeLessThanOrEqual(resent[platform]);
    }
    expect(harness.exclusivity()).toEqual({
      telegramConflicts: 0,
      discordPeakSessions: 1,
      slackPeakSockets: 1,
    });

    // Both write-ahead logs are replayed...
    let replayed = 0;
    for (const node of harness.nodes) {
      const status = await harness.api<RedisStatus>(node, '/api/status');
      expect(status.redis?.reachable, `${node.id} reaches Redis again`).toBe(true);
      expect(status.redis?.writeAheadPending, `${node.id} write-ahead records left`).toBe(0);
      replayed += status.redis?.writeAheadReplayed ?? 0;
    }
    expect(replayed).toBeGreaterThan(0);
    // ...and every message answered is stored in Redis's memory exactly once.
    const stored = await storedUserTexts(harness);
    for (const platform of PLATFORMS) {
      const missing: string[] = [];
      const doubled: string[] = [];
      for (const text of harness.sentTexts(platform)) {
        const times = stored.get(text) ?? 0;
        if (times === 0) missing.push(text);
        if (times > 1) doubled.push(text);
      }
      expect({ platform, missing, doubled }).toEqual({ platform, missing: [], doubled: [] });
    }
    for (const platform of EXCLUSIVE) expect(counts[platform].answered).toBe(counts[platform].sent);
  });
});

/** How many times each user message is stored across every person's memory in Redis. */
async function storedUserTexts(harness: ClusterHarness): Promise<Map<string, number>> {
  const client = harness.redisClient();
  try {
    const keys = await client.keys(`${KEY_PREFIX}:mem:*`);
    const counts = new Map<string, number>();
    for (const key of keys) {
      for (const raw of await client.lrange(key, 0, -1)) {
        const entry = JSON.parse(raw) as { user?: string };
        if (entry.user !== undefined) counts.set(entry.user, (counts.get(entry.user) ?? 0) + 1);
      }
    }
    return counts;
  } finally {
    client.disconnect();
  }
}
