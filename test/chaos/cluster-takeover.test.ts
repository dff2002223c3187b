import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterHarness,
  type ClusterNode,
  EXCLUSIVE,
  type Platform,
  type PlatformCount,
  redisUrlTarget,
} from '../support/cluster-harness.js';
import { createNodeNetwork, LOOPBACK, type NodeNetwork } from '../support/netns.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const LEASE_TTL_MS = 2000;
/** Never two pollers, sessions or sockets at once. */
const EXCLUSIVE_ALWAYS = { telegramConflicts: 0, discordPeakSessions: 1, slackPeakSockets: 1 };
/** Starting the fakes and two node processes, traffic, the fault, and the wait for every answer. */
const SCENARIO_TIMEOUT_MS = 120_000;

/**
 * Nothing lost; nothing doubled except, after a crash, replies whose delivery the crash cut off:
 * the node that re-runs such a delivery cannot ask Telegram whether the first attempt landed, so
 * it sends again and counts it as `resent`. Every duplicate must be one of those.
 */
function expectNothingLostOrDoubled(
  counts: Record<Platform, PlatformCount>,
  resent: Record<Platform, number> = { telegram: 0, discord: 0, slack: 0, http: 0 },
): void {
  for (const [platform, count] of Object.entries(counts) as [Platform, PlatformCount][]) {
    expect(count.sent, `${platform} sent`).toBeGreaterThan(0);
    expect({ platform, lost: count.lost }).toEqual({ platform, lost: 0 });
    expect(
      count.duplicated,
      `${platform} duplicates beyond the replies resent after the crash`,
    ).toBeLessThanOrEqual(resent[platform]);
  }
}

async function until(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('two nodes on one Redis: takeover of the platform connections', {
  timeout: SCENARIO_TIMEOUT_MS,
}, () => {
  let redis: TestRedis;
  let network: NodeNetwork;
  let harness: ClusterHarness | undefined;
  const target = () => redisUrlTarget(redis.urlOn(network.hostAddress));

  beforeAll(async () => {
    // Each node in its own network namespace where this machine allows it (loopback otherwise).
    network = createNodeNetwork(['a', 'b']);
    redis = await startRedis(network === LOOPBACK ? {} : { alsoBind: network.hostAddress });
  });
  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
  });
  afterAll(async () => {
    await redis.stop();
    network.destroy();
  });

  /** Both nodes up, traffic flowing on every channel; resolves with the node holding the connections. */
  async function running(keyPrefix: string, options: { llmDelayMs?: number } = {}): Promise<string> {
    harness = await ClusterHarness.start({
      redis: target(),
      network,
      leaseTtlMs: LEASE_TTL_MS,
      keyPrefix,
      ...options,
    });
    return harness.startBothWithTraffic();
  }

  function report(name: string, h: ClusterHarness, faultAt: number): void {
    console.info(
      `[${name}] counts ${JSON.stringify(h.counts())}; first reply after the fault (ms) ${JSON.stringify(h.recoveryMs(faultAt))}; Discord posts made while no session was live (read back over REST): ${h.undeliveredByDiscord()}; duplicates ${JSON.stringify(h.duplicates().map((d) => ({ text: d.text, afterFaultMs: d.times.map((t) => t - faultAt) })))}`,
    );
  }

  it('kill -9 of the node holding the connections: the other serves every platform again, nothing lost or doubled', async () => {
    const owner = await running('kill9');
    const h = harness as ClusterHarness;
    const survivor = h.other(owner);

    const faultAt = Date.now();
    await h.node(owner).kill('SIGKILL');
    await until('the survivor to hold every connection', async () => (await h.settled()) === survivor.id);
    await sleep(3000);
    // The killed node comes back (as PM2 restarts it) and becomes the standby.
    await h.node(owner).start();
    await sleep(1500);
    await h.stopTraffic();

    report('kill -9', h, faultAt);
    const resent = await h.resent();
    console.info(
      `[kill -9] replies resent after the crash cut off their delivery: ${JSON.stringify(resent)}`,
    );
    expect(await h.holders()).toEqual({ telegram: survivor.id, discord: survivor.id, slack: survivor.id });
    const recovery = h.recoveryMs(faultAt);
    for (const platform of EXCLUSIVE) expect(recovery[platform], `${platform} served again`).toBeDefined();
    expectNothingLostOrDoubled(h.counts(), resent);
    expect(h.exclusivity()).toEqual(EXCLUSIVE_ALWAYS);
  });

  it('SIGINT hand-over: the stopping node releases its leases and the other takes over at once', async () => {
    const owner = await running('sigint');
    const h = harness as ClusterHarness;
    const survivor = h.other(owner);

    const faultAt = Date.now();
    const stopped = h.node(owner).kill('SIGINT');
    await until('the survivor to hold every connection', async () => (await h.settled()) === survivor.id);
    const takenOverMs = Date.now() - faultAt;
    await stopped;
    await sleep(2000);
    await h.stopTraffic();

    report('SIGINT', h, faultAt);
    console.info(`[SIGINT] every connection held by the other node after ${takenOverMs} ms`);
    // The leases were released, not left to expire.
    expect(takenOverMs).toBeLessThan(LEASE_TTL_MS);
    expectNothingLostOrDoubled(h.counts());
    expect(h.exclusivity()).toEqual(EXCLUSIVE_ALWAYS);
  });

  it('the link between the nodes cut (both still reach Redis): no platform is served by two nodes at once', async () => {
    const owner = await running('mesh');
    const h = harness as ClusterHarness;
    console.info(
      `[mesh cut] nodes in ${network === LOOPBACK ? 'one loopback interface (TCP proxies as the mesh)' : 'their own network namespaces'}`,
    );

    h.cutMesh();
    type Status = { cluster: { nodes: { node: string; mesh?: string }[] } };
    const status = (node: ClusterNode) => h.api<Status>(node, '/api/status');
    await until('each node to see the other unreachable over the mesh', async () => {
      const views = await Promise.all(h.nodes.map((n) => status(n)));
      return views.every((v) => v.cluster.nodes.some((n) => n.mesh === 'unreachable'));
    });
    // Well past several lease terms with the link down.
    await sleep(LEASE_TTL_MS * 3);
    expect(await h.holders()).toEqual({ telegram: owner, discord: owner, slack: owner });
    h.healMesh();
    await until('the mesh to be reachable again', async () => {
      const views = await Promise.all(h.nodes.map((n) => status(n)));
      return views.every((v) => v.cluster.nodes.every((n) => n.mesh !== 'unreachable'));
    });
    await h.stopTraffic();

    report('mesh cut', h, Date.now());
    expectNothingLostOrDoubled(h.counts());
    expect(h.exclusivity()).toEqual(EXCLUSIVE_ALWAYS);
  });

  it("a job's worker killed mid-job: the job runs again on the other node and takes effect exactly once", async () => {
    harness = await ClusterHarness.start({
      redis: target(),
      network,
      leaseTtlMs: LEASE_TTL_MS,
      keyPrefix: 'midjob',
    });
    const h = harness;
    // Only "a" runs, so the turn is certainly on its worker when it dies.
    await h.node('a').start();
    await h.settled();
    h.llm.setFault({ kind: 'slow_first_token', delayMs: 5000, times: 1 });
    const hitsBefore = h.llm.chatHits;
    h.telegram.pushText(1000, 1000, 'mid-job message');
    await until('the turn to reach the provider', () => h.llm.chatHits > hitsBefore);
    await h.node('a').kill('SIGKILL');

    await h.node('b').start();
    await until('the reply', () => h.telegram.sent.some((m) => m.text === 'echo: mid-job message'), 30_000);
    await sleep(1500);
    const replies = h.telegram.sent.filter((m) => m.text === 'echo: mid-job message');
    console.info(`[mid-job] provider calls ${h.llm.chatHits - hitsBefore}, replies ${replies.length}`);
    // The job ran a second time (on "b"), and the person got exactly one answer.
    expect(h.llm.chatHits - hitsBefore).toBe(2);
    expect(replies).toHaveLength(1);
  });
});
