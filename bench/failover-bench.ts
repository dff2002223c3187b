/**
 * How long each fault leaves the agent unserved: two agent nodes (separate processes) on one
 * Redis, fake Telegram, Discord, Slack (Socket Mode) and OpenAI, and traffic on every channel.
 * Per scenario and run, the time from the fault to the first reply to a message sent after it, on
 * the slowest platform (so: every platform is served again), plus the messages lost and doubled.
 *
 * Scenarios: `kill9` (kill -9 of the node holding the connections), `sigint` (graceful hand-over),
 * `redis-primary` (the Redis primary killed; Sentinel promotes the replica, down-after 1000 ms),
 * `redis-stop` (Redis stopped for BENCH_OUTAGE_MS; the nodes answer from their write-ahead logs),
 * `mesh` (the link between the nodes cut), `worker` (a node killed mid-turn; the other re-runs it).
 *
 * Environment: BENCH_RUNS (3), BENCH_SCENARIOS (all), BENCH_LEASE_TTL_MS (2000),
 * BENCH_OUTAGE_MS (30000).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ClusterHarness,
  PLATFORMS,
  type Platform,
  type RedisTarget,
  redisUrlTarget,
} from '../test/support/cluster-harness.js';
import { createNodeNetwork, LOOPBACK, type NodeNetwork } from '../test/support/netns.js';
import { startSentinelGroup } from '../test/support/redis-sentinel.js';
import { startRedis } from '../test/support/redis-server.js';
import { eachRun, machineLine, ms, table } from './support/report.js';
import { median } from './support/stats.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LEASE_TTL_MS = Number(process.env.BENCH_LEASE_TTL_MS ?? 2000);
const ALL = ['kill9', 'sigint', 'redis-primary', 'redis-stop', 'mesh', 'worker'] as const;
const OUTAGE_MS = Number(process.env.BENCH_OUTAGE_MS ?? 30_000);
type Scenario = (typeof ALL)[number];
const SCENARIOS = (process.env.BENCH_SCENARIOS?.split(',') ?? [...ALL]) as Scenario[];

const TARGET_MS: Record<Scenario, number | undefined> = {
  kill9: 3000,
  sigint: 1000,
  'redis-primary': 5000,
  'redis-stop': undefined,
  mesh: undefined,
  worker: undefined,
};

const DESCRIPTION: Record<Scenario, string> = {
  kill9: 'kill -9 of the node holding the connections',
  sigint: 'SIGINT hand-over (PM2 stop/reload)',
  'redis-primary': 'Redis primary killed, Sentinel promotes the replica',
  'redis-stop': `Redis stopped ${OUTAGE_MS / 1000} s (answered from the write-ahead logs)`,
  mesh: 'link between the nodes cut (no takeover expected)',
  worker: 'node killed mid-turn, the other node re-runs the job',
};

interface Measurement {
  /** Fault to the first reply after it, slowest platform. */
  recoveryMs: number;
  perPlatform: Partial<Record<Platform, number>>;
  lost: number;
  duplicated: number;
}

async function waitFor(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Waits for a reply after the fault on every platform, then counts. */
async function measureRecovery(
  harness: ClusterHarness,
  faultAt: number,
  /** Runs once every platform answered again, before the traffic stops (ends the fault). */
  thenEnd?: () => Promise<void>,
): Promise<Measurement> {
  await waitFor('every platform to answer again', () =>
    PLATFORMS.every((p) => harness.recoveryMs(faultAt)[p] !== undefined),
  );
  const perPlatform = harness.recoveryMs(faultAt);
  await thenEnd?.();
  await harness.stopTraffic();
  const counts = Object.values(harness.counts());
  return {
    recoveryMs: Math.max(...PLATFORMS.map((p) => perPlatform[p] ?? Number.NaN)),
    perPlatform,
    lost: counts.reduce((n, c) => n + c.lost, 0),
    duplicated: counts.reduce((n, c) => n + c.duplicated, 0),
  };
}

async function withCluster<T>(
  redis: RedisTarget,
  keyPrefix: string,
  body: (harness: ClusterHarness) => Promise<T>,
  network: NodeNetwork = LOOPBACK,
): Promise<T> {
  const harness = await ClusterHarness.start({ redis, leaseTtlMs: LEASE_TTL_MS, keyPrefix, network });
  try {
    return await body(harness);
  } finally {
    await harness.stop();
  }
}

async function run(scenario: Scenario, n: number): Promise<Measurement> {
  const keyPrefix = `bench-${scenario}-${n}`;
  if (scenario === 'redis-primary') {
    const group = await startSentinelGroup({ downAfterMs: 1000 });
    try {
      const target: RedisTarget = {
        env: { REDIS_SENTINELS: group.sentinels, REDIS_MASTER_NAME: group.masterName },
        client: () => group.primaryClient(),
      };
      return await withCluster(target, keyPrefix, async (harness) => {
        await harness.startBothWithTraffic();
        const faultAt = Date.now();
        await group.killPrimary();
        return measureRecovery(harness, faultAt);
      });
    } finally {
      await group.stop();
    }
  }
  // Each node in its own network namespace where the machine allows it.
  const network = createNodeNetwork(['a', 'b']);
  const redis = await startRedis(network === LOOPBACK ? {} : { alsoBind: network.hostAddress });
  try {
    return await withCluster(
      redisUrlTarget(redis.urlOn(network.hostAddress)),
      keyPrefix,
      async (harness) => {
        if (scenario === 'worker') return workerKilledMidTurn(harness);
        if (scenario === 'redis-stop') {
          // Timed from the stop: the nodes answer from their write-ahead logs during the outage.
          // Redis comes back after BENCH_OUTAGE_MS, and lost/doubled are counted after the replay.
          await harness.startBothWithTraffic();
          const stoppedAt = Date.now();
          await redis.down();
          return measureRecovery(harness, stoppedAt, async () => {
            await sleep(Math.max(0, stoppedAt + OUTAGE_MS - Date.now()));
            await redis.up();
            await sleep(5000);
          });
        }
        const owner = await harness.startBothWithTraffic();
        const faultAt = Date.now();
        if (scenario === 'mesh') harness.cutMesh();
        else await harness.node(owner).kill(scenario === 'kill9' ? 'SIGKILL' : 'SIGINT');
        return measureRecovery(harness, faultAt);
      },
      network,
    );
  } finally {
    await redis.stop();
    network.destroy();
  }
}

/** Kill -9 while the provider is answering a turn; the other node (started then) re-runs it. */
async function workerKilledMidTurn(harness: ClusterHarness): Promise<Measurement> {
  await harness.node('a').start();
  await harness.settled();
  harness.llm.setFault({ kind: 'slow_first_token', delayMs: 5000, times: 1 });
  const hits = harness.llm.chatHits;
  harness.telegram.pushText(1000, 1000, 'mid-turn');
  await waitFor('the turn to reach the provider', () => harness.llm.chatHits > hits);
  const faultAt = Date.now();
  await Promise.all([harness.node('a').kill('SIGKILL'), harness.node('b').start()]);
  await waitFor('the reply', () => harness.telegram.sent.some((m) => m.text === 'echo: mid-turn'), 60_000);
  const recoveryMs = Date.now() - faultAt;
  await sleep(1500);
  const replies = harness.telegram.sent.filter((m) => m.text === 'echo: mid-turn').length;
  return { recoveryMs, perPlatform: { telegram: recoveryMs }, lost: 0, duplicated: replies - 1 };
}

async function main(): Promise<void> {
  console.log(machineLine('bench:failover'));
  const probe = createNodeNetwork(['probe']);
  const where = probe === LOOPBACK ? 'all on loopback' : 'each node in its own network namespace';
  probe.destroy();
  console.log(
    `lease TTL ${LEASE_TTL_MS} ms, ${RUNS} runs per scenario, Sentinel down-after 1000 ms; nodes ${where} (the Sentinel scenario on loopback)\n`,
  );
  const rows: string[][] = [];
  for (const scenario of SCENARIOS) {
    const results: Measurement[] = [];
    for (let n = 1; n <= RUNS; n++) {
      const result = await run(scenario, n);
      results.push(result);
      const platforms = Object.entries(result.perPlatform)
        .map(([p, v]) => `${p} ${ms(v ?? Number.NaN)}`)
        .join(', ');
      console.log(
        `${scenario} run ${n}: ${ms(result.recoveryMs)} ms (${platforms}); lost ${result.lost}, duplicated ${result.duplicated}`,
      );
    }
    const figures = results.map((r) => r.recoveryMs);
    const target = TARGET_MS[scenario];
    rows.push([
      DESCRIPTION[scenario],
      eachRun(figures, ms),
      ms(median(figures)),
      ms(Math.max(...figures)),
      target === undefined ? '-' : `<= ${target}`,
      String(results.reduce((n, r) => n + r.lost, 0)),
      String(results.reduce((n, r) => n + r.duplicated, 0)),
    ]);
  }
  console.log(
    `\nFault to the first reply after it, on the slowest platform (ms):\n${table(
      ['scenario', 'runs', 'median', 'max', 'target', 'lost', 'duplicated'],
      rows,
    )}`,
  );
  console.log(
    '\n"Redis stopped" is timed from the stop: the nodes answer from their write-ahead logs meanwhile; lost and duplicated are counted after Redis is back and the logs are replayed.',
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
