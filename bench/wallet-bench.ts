/**
 * Wallet benchmark: the time from `/wallet send` to a confirmed transfer on a local Solana
 * runtime, and the time the policy takes to judge a transfer.
 *
 *   npm run bench:wallet
 *
 * Set-up: LiteSVM behind the JSON-RPC fake in its own process (a block every 20 ms; a transfer
 * is `confirmed` in the block it lands in), and a real agent in this process on the local log,
 * its wallet reaching the fake through @solana/web3.js's `Connection` and polling signature
 * status every `confirmPollMs` (50 ms here, 500 ms by default).
 *
 * Per run (BENCH_RUNS, 3), measured one after another:
 *   - baseline: `/wallet address` over HTTP (a command with no RPC call and no write);
 *   - send: `/wallet send 0.001 SOL <allowlisted>` over HTTP, until the reply says confirmed
 *     (BENCH_SENDS, 20, one at a time): policy, the atomic cap check (fsync'd), signing, the
 *     fsync'd persist of the signed bytes, broadcast and confirmation;
 *   - policy check: `WalletPolicy.judge` alone, in a loop (BENCH_JUDGE_ITERATIONS, 20,000);
 *   - cap check: the store's atomic authorise step (its fsync'd write included), 200 times.
 * Medians across runs are printed, with every run.
 */
import { performance } from 'node:perf_hooks';
import { LAMPORTS_PER_SOL } from '@solana/web3.js';
import { startWalletAgent } from '../test/support/wallet-agent.js';
import { startWalletWorld } from '../test/support/wallet-world.js';
import { intEnv } from './support/load.js';
import { eachRun, machineLine, ms, table } from './support/report.js';
import { median, percentile } from './support/stats.js';

const RUNS = intEnv('BENCH_RUNS', 3);
const SENDS = intEnv('BENCH_SENDS', 20);
const JUDGE_ITERATIONS = intEnv('BENCH_JUDGE_ITERATIONS', 20_000);

interface RunFigures {
  baselineMedianMs: number;
  sendMedianMs: number;
  sendP95Ms: number;
  sendMaxMs: number;
  judgeMicros: number;
  authorizeMedianMs: number;
}

async function oneRun(): Promise<RunFigures> {
  const world = await startWalletWorld({
    limits: {
      SOL: { perTransaction: '1', perDay: '1000', autonomousPerTransaction: '0', autonomousPerDay: '0' },
    },
  });
  const agent = await startWalletAgent(world);
  try {
    const friend = world.friend.publicKey.toBase58();
    await agent.say('owner', '/wallet balance'); // Proves the cluster once, as any first action does.
    const baseline: number[] = [];
    for (let i = 0; i < SENDS; i += 1) {
      const start = performance.now();
      await agent.say('owner', '/wallet address');
      baseline.push(performance.now() - start);
    }
    const sends: number[] = [];
    for (let i = 0; i < SENDS; i += 1) {
      const start = performance.now();
      const reply = await agent.say('owner', `/wallet send 0.001 SOL ${friend}`);
      sends.push(performance.now() - start);
      if (!/confirmed|finalized/.test(reply)) throw new Error(`not confirmed: ${reply}`);
    }
    const landed = await world.solana.balance(world.friend.publicKey);
    if (landed !== BigInt(SENDS) * BigInt(LAMPORTS_PER_SOL / 1000))
      throw new Error(`ledger shows ${landed} lamports`);

    const wallet = agent.agent.wallet;
    if (!wallet) throw new Error('no wallet');
    const policy = wallet.service.policy;
    const request = {
      token: 'SOL',
      amount: '0.001',
      recipient: friend,
      origin: 'command' as const,
      requesterIsOwner: true,
    };
    for (let i = 0; i < 1000; i += 1) policy.judge(request); // Warm-up.
    const judgeStart = performance.now();
    for (let i = 0; i < JUDGE_ITERATIONS; i += 1) policy.judge(request);
    const judgeMicros = ((performance.now() - judgeStart) * 1000) / JUDGE_ITERATIONS;

    const authorize: number[] = [];
    const now = Date.now();
    for (let i = 0; i < 200; i += 1) {
      const id = `bench${i}`;
      await wallet.store.create({
        id,
        token: 'SOL',
        decimals: 9,
        amount: '1',
        recipient: friend,
        requester: { personId: 'bench', channel: 'http', userId: 'bench' },
        origin: 'command',
        status: 'proposed',
        createdAt: now,
        updatedAt: now,
      });
      const start = performance.now();
      const result = await wallet.store.authorize(
        id,
        ['proposed'],
        { token: 'SOL', perDay: 10n ** 15n, windowMs: 86_400_000 },
        {},
        now,
      );
      authorize.push(performance.now() - start);
      if (!result.ok) throw new Error(`authorize refused: ${result.reason}`);
      // Out of the way of the reconciliation job: this intent was never meant to be sent.
      await wallet.store.transition(id, ['approved'], {
        status: 'failed',
        error: 'benchmark',
        updatedAt: now,
      });
    }
    const sorted = [...sends].sort((a, b) => a - b);
    return {
      baselineMedianMs: median(baseline),
      sendMedianMs: median(sends),
      sendP95Ms: percentile(sorted, 95),
      sendMaxMs: sorted.at(-1) ?? Number.NaN,
      judgeMicros,
      authorizeMedianMs: median(authorize),
    };
  } finally {
    await agent.agent.stop();
    await world.close();
  }
}

async function main(): Promise<void> {
  console.log(machineLine('bench:wallet'));
  console.log(
    `${RUNS} runs, ${SENDS} sends each; policy judged ${JUDGE_ITERATIONS.toLocaleString('en-US')} times a run\n`,
  );
  const runs: RunFigures[] = [];
  for (let run = 0; run < RUNS; run += 1) runs.push(await oneRun());
  const row = (label: string, pick: (r: RunFigures) => number, format: (n: number) => string) => [
    label,
    format(median(runs.map(pick))),
    eachRun(runs.map(pick), format),
  ];
  const micro = (n: number) => n.toFixed(2);
  console.log(
    table(
      ['measure', 'median of runs', 'each run'],
      [
        row('baseline: /wallet address, ms', (r) => r.baselineMedianMs, ms),
        row('/wallet send to confirmed, median ms', (r) => r.sendMedianMs, ms),
        row('/wallet send to confirmed, p95 ms', (r) => r.sendP95Ms, ms),
        row('/wallet send to confirmed, max ms', (r) => r.sendMaxMs, ms),
        row('policy check (judge), µs', (r) => r.judgeMicros, micro),
        row('cap check (atomic authorise, fsync), ms', (r) => r.authorizeMedianMs, ms),
      ],
    ),
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
