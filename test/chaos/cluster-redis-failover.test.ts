import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterHarness, type Platform, type RedisTarget } from '../support/cluster-harness.js';
import { type SentinelGroup, startSentinelGroup } from '../support/redis-sentinel.js';

describe('two nodes on Redis with Sentinel: the primary is killed', { timeout: 120_000 }, () => {
  let group: SentinelGroup;
  let harness: ClusterHarness;

  beforeAll(async () => {
    group = await startSentinelGroup({ downAfterMs: 1000 });
    const sentinels = group.sentinels.split(',').map((entry) => {
      const [host, port] = entry.split(':');
      return { host: host as string, port: Number(port) };
    });
    const target: RedisTarget = {
      env: { REDIS_SENTINELS: group.sentinels, REDIS_MASTER_NAME: group.masterName },
      client: () => new Redis({ sentinels, name: group.masterName, maxRetriesPerRequest: 3 }),
    };
    harness = await ClusterHarness.start({ redis: target, keyPrefix: 'sentinel' });
  });
  afterAll(async () => {
    await harness?.stop();
    await group?.stop();
  });

  it('Sentinel promotes the replica and both nodes carry on: nothing lost, nothing doubled', async () => {
    const owner = await harness.startBothWithTraffic();

    const oldPrimary = group.primaryPort();
    const faultAt = Date.now();
    await group.killPrimary();
    const newPrimary = await group.waitForPromotion(20_000);
    expect(newPrimary).not.toBe(oldPrimary);
    // Traffic keeps flowing for a while on the promoted primary.
    await sleep(4000);
    await harness.stopTraffic();

    const counts = harness.counts();
    const recovery = harness.recoveryMs(faultAt);
    console.info(
      `[redis primary killed] promoted ${newPrimary} after the kill; counts ${JSON.stringify(counts)}; first reply after the fault (ms) ${JSON.stringify(recovery)}`,
    );
    for (const [platform, count] of Object.entries(counts) as [Platform, (typeof counts)[Platform]][]) {
      expect(count.sent, `${platform} sent`).toBeGreaterThan(0);
      expect({ platform, lost: count.lost, duplicated: count.duplicated }).toEqual({
        platform,
        lost: 0,
        duplicated: 0,
      });
      expect(recovery[platform], `${platform} answered after the failover`).toBeDefined();
    }
    // One of the nodes holds each connection (the same one, or the other if a lease lapsed
    // during the failover), never both at once.
    const holders = await harness.holders();
    console.info(`[redis primary killed] holder before ${owner}, after ${JSON.stringify(holders)}`);
    expect(Object.values(holders).every((h) => h === 'a' || h === 'b')).toBe(true);
    expect(harness.exclusivity()).toEqual({
      telegramConflicts: 0,
      discordPeakSessions: 1,
      slackPeakSockets: 1,
    });
  });
});
