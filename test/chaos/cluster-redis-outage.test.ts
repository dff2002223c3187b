import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterHarness, EXCLUSIVE, type Platform, redisUrlTarget } from '../support/cluster-harness.js';
import { createNodeNetwork, LOOPBACK, type NodeNetwork } from '../support/netns.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const OUTAGE_MS = 30_000;

/**
 * Redis stopped for 30 s under traffic on every channel, then started again. Today a message
 * needs Redis to be answered, so nothing is answered during the outage; what this proves is that
 * nothing is lost or doubled: HTTP clients retry with the same event id, Telegram keeps the
 * updates, Slack re-sends its events, Discord's are read back over REST once a node holds the
 * gateway again, and no platform is ever served by both nodes.
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
      keyPrefix: 'outage',
      network,
    });
  });
  afterAll(async () => {
    await harness?.stop();
    await redis?.stop();
    network?.destroy();
  });

  it('answers every message once Redis is back: nothing lost, nothing doubled, never two holders', async () => {
    await harness.startBothWithTraffic();
    await redis.down();
    await sleep(OUTAGE_MS);
    await redis.up();
    const backAt = Date.now();
    await sleep(5000);
    await harness.stopTraffic(90_000);

    const counts = harness.counts();
    const recovery = harness.recoveryMs(backAt);
    const resent = await harness.resent();
    console.info(
      `[redis outage ${OUTAGE_MS} ms] counts ${JSON.stringify(counts)}; first reply after Redis was back (ms) ${JSON.stringify(recovery)}; resent ${JSON.stringify(resent)}; holders after ${JSON.stringify(await harness.holders())}`,
    );
    for (const [platform, count] of Object.entries(counts) as [Platform, (typeof counts)[Platform]][]) {
      expect(count.sent, `${platform} sent`).toBeGreaterThan(0);
      expect({ platform, lost: count.lost }).toEqual({ platform, lost: 0 });
      expect(count.duplicated, `${platform} duplicates`).toBeLessThanOrEqual(resent[platform]);
    }
    for (const platform of EXCLUSIVE) expect(recovery[platform], `${platform} served again`).toBeDefined();
    expect(harness.exclusivity()).toEqual({
      telegramConflicts: 0,
      discordPeakSessions: 1,
      slackPeakSockets: 1,
    });
  });
});
