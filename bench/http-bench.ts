/**
 * HTTP throughput and latency benchmark of the agent, per memory backend, against a baseline.
 *
 *   npm run bench:http
 *
 * Targets, each measured BENCH_RUNS times (median and every run are printed):
 *   - baseline: the fake OpenAI provider's /v1/chat/completions, hit directly with a request shaped
 *     like the ones the agent sends (system prompt, 20 turns of context, the new message);
 *   - bare hop (a reference, not judged): the same request through the least a Node hop through
 *     the `openai` SDK does (bench/bare-hop-process.ts: fastify, the SDK, a keep-alive dispatcher),
 *     the hop the figures are quoted against, measured on this machine in the same runs;
 *   - the agent with the local append-only log as memory;
 *   - the agent with Redis as memory (a private redis-server from startRedis(), AOF fsync always,
 *     as the README recommends): the judged target;
 *   - the same with `appendfsync everysec` (shown, not judged): what the durable setting costs.
 *
 * Measurements:
 *   - closed loop: BENCH_CONCURRENCY conversations, each sending its next message once the
 *     previous one is answered, for BENCH_SECONDS after BENCH_WARMUP_SECONDS of warm-up;
 *   - open loop: BENCH_RATE messages/s scheduled by the clock (not by replies) for BENCH_SECONDS
 *     after the same warm-up; latency runs from the scheduled send time to the reply, so a stall
 *     counts against every message it delays (no coordinated omission).
 *
 * Processes: this one is the load generator only. The fake provider runs in a child process
 * (this file with --fake-provider) and the agent runs as the built dist/main.js (startAgentProcess)
 * with LOG_LEVEL=warn, so the load generator, the provider and the agent never share an event loop.
 *
 * Environment knobs: BENCH_RUNS (3), BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (1),
 * BENCH_CONCURRENCY (16), BENCH_RATE (200),
 * BENCH_TARGETS (baseline,barehop,log,redis,redis-everysec),
 * BENCH_AGENT_NODE_OPTIONS (NODE_OPTIONS for the agent, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"),
 * BENCH_COMPARE_MAIN (the dist/main.js of another build, e.g. an older commit's checkout: each
 * agent target is also measured through an agent running it, in the same runs, marked
 * "[compared]", so two builds are compared on the same minute of a noisy machine).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';
import { startFakeOpenAi } from '../test/fakes/fake-openai.js';
import { startAgentProcess } from '../test/support/agent-process.js';
import { startRedis } from '../test/support/redis-server.js';
import { startBareHop } from './support/bare-hop.js';
import { type CpuSample, cpuPercent, otherProcessesCpu, redisPid, sampleCpu } from './support/cpu.js';
import { intEnv, keepAliveAgent, type OpenResult, openLoop } from './support/load.js';
import {
  adopt,
  agentDir,
  type Child,
  exitWithParent,
  runBench,
  runningChildren,
  spawnNode,
  stopAtCleanup,
  untilReady,
} from './support/processes.js';
import { coresNote, eachRun, int, loadAverage, machineLine, ms, pct, table } from './support/report.js';
import { median } from './support/stats.js';

const RUNS = intEnv('BENCH_RUNS', 3);
const SECONDS = intEnv('BENCH_SECONDS', 5);
const WARMUP_SECONDS = intEnv('BENCH_WARMUP_SECONDS', 1);
const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 16);
const RATE = intEnv('BENCH_RATE', 200);
const TARGETS = (process.env.BENCH_TARGETS ?? 'baseline,barehop,log,redis,redis-everysec')
  .split(',')
  .map((s) => s.trim());
const AGENT_NODE_OPTIONS = process.env.BENCH_AGENT_NODE_OPTIONS ?? '';
/** Another build's dist/main.js to measure beside this one (see the header). */
const COMPARE_MAIN = process.env.BENCH_COMPARE_MAIN;
/** No single request may hang a run: undici gives up on it after this long. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Unmeasured load on each target before its first run, so JIT warm-up is not in any run. */
const PRIME_SECONDS = 2;

const TARGET_MSGS_PER_S = 1500;
/** The judged target: the agent on Redis with the settings the README recommends. */
const REDIS_TARGET = 'agent, redis memory';
const TARGET_P99_MS = 5;

// ---------------------------------------------------------------------------------------------
// Child mode: the fake provider in its own process.

async function runFakeProviderChild(): Promise<void> {
  const fake = await startFakeOpenAi({ record: false });
  exitWithParent(() => fake.close());
  process.send?.({ url: fake.url, baseURL: fake.baseURL });
}

// ---------------------------------------------------------------------------------------------
// Processes.

interface FakeProviderReady {
  url: string;
  baseURL: string;
}

async function startFakeProvider(): Promise<{ handle: Child } & FakeProviderReady> {
  const handle = spawnNode('fake provider', [...process.execArgv, import.meta.filename, '--fake-provider'], {
    PATH: process.env.PATH ?? '',
  });
  const ready = await untilReady(
    handle,
    15_000,
    (m): m is FakeProviderReady => typeof m === 'object' && m !== null && 'baseURL' in m,
  );
  return { handle, ...ready };
}

/** The built agent (dist/main.js) as its own process, with its own config and data directory. */
async function startAgent(
  name: string,
  env: Record<string, string>,
  mainJs?: string,
): Promise<{ handle: Child; url: string }> {
  // The default limit (600 a minute per client) would answer most of the load with 429; the
  // limiter itself stays in the path, so its cost is measured.
  const { configPath, dataDir } = agentDir(os.tmpdir(), 'agent-bench-', {
    http: { rateLimit: { max: 1_000_000_000, windowMs: 60_000 } },
  });
  const agent = await startAgentProcess(
    {
      AGENT_CONFIG: configPath,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...(AGENT_NODE_OPTIONS ? { NODE_OPTIONS: AGENT_NODE_OPTIONS } : {}),
      ...env,
    },
    20_000,
    undefined,
    mainJs,
  );
  return { handle: adopt(name, agent), url: agent.url };
}

// ---------------------------------------------------------------------------------------------
// Load.

interface Target {
  label: string;
  /** The processes serving this target, for CPU accounting. */
  pids: Pids;
  /** Sends one message of conversation `conversation`; resolves with undefined when answered correctly, else the problem. */
  send: (conversation: number, seq: number) => Promise<string | undefined>;
  firstError?: string;
  close: () => Promise<void>;
}

/** A target whose `attempt` throws unless the message was answered correctly. */
function checkedTarget(
  label: string,
  pids: Pids,
  attempt: (conversation: number, seq: number, dispatcher: Dispatcher) => Promise<void>,
): Target {
  const dispatcher = keepAliveAgent(CONCURRENCY * 4, REQUEST_TIMEOUT_MS);
  const target: Target = {
    label,
    pids,
    async send(conversation, seq) {
      try {
        await attempt(conversation, seq, dispatcher);
        return undefined;
      } catch (error) {
        const problem = String((error as Error).message ?? error);
        target.firstError ??= problem;
        return problem;
      }
    },
    close: () => dispatcher.close(),
  };
  return target;
}

function messageText(conversation: number, seq: number): string {
  return `Hello from conversation ${conversation}, message ${seq}: how is it going today?`;
}

function agentTarget(label: string, baseUrl: string, pids: Pids): Target {
  return checkedTarget(label, pids, async (conversation, seq, dispatcher) => {
    const text = messageText(conversation, seq);
    const response = await request(`${baseUrl}/api/conversations/bench-${conversation}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
      dispatcher,
    });
    const body = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${body.slice(0, 200)}`);
    const reply = (JSON.parse(body) as { reply?: { text?: string } }).reply?.text;
    if (reply !== `echo: ${text}`) throw new Error(`unexpected reply: ${body.slice(0, 200)}`);
  });
}

/** What the agent sends the provider once a conversation has a full context window. */
function baselineBody(conversation: number, seq: number): string {
  const messages: { role: string; content: string }[] = [
    { role: 'system', content: 'You are a helpful, concise assistant.' },
  ];
  for (let i = 20; i >= 1; i -= 1) {
    const past = messageText(conversation, seq - i);
    messages.push({ role: 'user', content: past }, { role: 'assistant', content: `echo: ${past}` });
  }
  messages.push({ role: 'user', content: messageText(conversation, seq) });
  return JSON.stringify({ model: 'fake-model', messages });
}

/** Sends what the agent would send its provider to an OpenAI-compatible `baseURL` (the fake, or a hop). */
function completionsTarget(label: string, baseURL: string, pids: Pids): Target {
  return checkedTarget(label, pids, async (conversation, seq, dispatcher) => {
    const response = await request(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-needed' },
      body: baselineBody(conversation, seq),
      dispatcher,
    });
    const body = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${body.slice(0, 200)}`);
    const reply = (JSON.parse(body) as { choices?: { message?: { content?: string } }[] }).choices?.[0]
      ?.message?.content;
    if (reply !== `echo: ${messageText(conversation, seq)}`) throw new Error(`unexpected reply: ${body}`);
  });
}

interface ClosedResult {
  perSecond: number;
  errors: number;
  /** Percent of one core used by each process while measuring. */
  cpu: CpuSample<CpuRole>;
}

/** Every conversation sends its next message when the previous one is answered. */
async function closedLoop(target: Target, warmupS: number, measureS: number): Promise<ClosedResult> {
  const measureFrom = performance.now() + warmupS * 1000;
  const measureTo = measureFrom + measureS * 1000;
  let completed = 0;
  let errors = 0;
  let cpuBefore: CpuSample<CpuRole> = {};
  let cpuAfter: CpuSample<CpuRole> = {};
  const startSampler = setTimeout(() => {
    cpuBefore = sampleCpu(target.pids);
  }, measureFrom - performance.now());
  const endSampler = setTimeout(() => {
    cpuAfter = sampleCpu(target.pids);
  }, measureTo - performance.now());
  const worker = async (conversation: number) => {
    let seq = 0;
    while (performance.now() < measureTo) {
      const ok = (await target.send(conversation, seq)) === undefined;
      seq += 1;
      const end = performance.now();
      if (end >= measureFrom && end < measureTo) {
        if (ok) completed += 1;
        else errors += 1;
      }
      // Do not spin on a target that answers errors instantly.
      if (!ok) await sleep(10);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => worker(i)));
  clearTimeout(startSampler);
  clearTimeout(endSampler);
  return { perSecond: completed / measureS, errors, cpu: cpuPercent(cpuBefore, cpuAfter, measureS * 1000) };
}

/**
 * Sends RATE messages a second by the clock, round-robin over CONCURRENCY conversations,
 * whatever the replies do. Latency is measured from the scheduled send time.
 */
function openLoopOf(target: Target, warmupS: number, measureS: number): Promise<OpenResult> {
  const seqs = new Array<number>(CONCURRENCY).fill(0);
  const send = (index: number) => {
    const conversation = index % CONCURRENCY;
    const seq = seqs[conversation] as number;
    seqs[conversation] = seq + 1;
    return target.send(conversation, seq);
  };
  return openLoop(send, RATE, warmupS, measureS);
}

// ---------------------------------------------------------------------------------------------
// CPU accounting (support/cpu.ts): which process the machine's two cores are spent in.

/** The processes a target is served by, in the CPU table's column order. */
const CPU_ROLES = ['loadGenerator', 'fakeProvider', 'agent', 'redis'] as const;
type CpuRole = (typeof CPU_ROLES)[number];

interface Pids {
  loadGenerator: number;
  fakeProvider?: number;
  agent?: number;
  redis?: number;
}

// ---------------------------------------------------------------------------------------------
// Report.

interface TargetResults {
  target: Target;
  closed: ClosedResult[];
  open: OpenResult[];
}

function report(results: TargetResults[]): string {
  const throughput = table(
    ['target', 'msg/s (median)', `all ${RUNS} runs`, 'errors'],
    results.map(({ target, closed }) => [
      target.label,
      int(median(closed.map((r) => r.perSecond))),
      eachRun(
        closed.map((r) => r.perSecond),
        int,
      ),
      String(closed.reduce((n, r) => n + r.errors, 0)),
    ]),
  );
  const latency = table(
    ['target', 'p50 ms', 'p99 ms', 'max ms', 'p99 of each run', 'max of each run', 'errors', 'send lag'],
    results.map(({ target, open }) => [
      target.label,
      ms(median(open.map((r) => r.p50))),
      ms(median(open.map((r) => r.p99))),
      ms(median(open.map((r) => r.max))),
      eachRun(
        open.map((r) => r.p99),
        ms,
      ),
      eachRun(
        open.map((r) => r.max),
        ms,
      ),
      String(open.reduce((n, r) => n + r.errors, 0)),
      `${ms(Math.max(...open.map((r) => r.maxSendLagMs)))} ms`,
    ]),
  );
  const cpuOf = (closed: ClosedResult[], role: CpuRole) => {
    const values = closed.map((r) => r.cpu[role]).filter((v): v is number => v !== undefined);
    return values.length > 0 ? median(values) : undefined;
  };
  const cpu = table(
    ['target', 'load gen', 'fake provider', 'agent', 'redis', 'other processes', 'agent CPU per msg'],
    results.map(({ target, closed }) => {
      const perRole = CPU_ROLES.map((role) => cpuOf(closed, role));
      // Everything else the machine ran meanwhile (other jobs), which the numbers above compete with.
      const others = closed.map((r) => otherProcessesCpu(r.cpu)).filter((v) => Number.isFinite(v));
      const agent = cpuOf(closed, 'agent');
      const rps = median(closed.map((r) => r.perSecond));
      return [
        target.label,
        ...perRole.map(pct),
        others.length > 0 ? pct(Math.max(0, median(others))) : '-',
        agent === undefined ? '-' : `${int((agent * 10_000) / rps)} us`,
      ];
    }),
  );
  const lines = [
    '',
    `(a) Closed loop: ${CONCURRENCY} concurrent conversations, ${SECONDS} s measured after ${WARMUP_SECONDS} s warm-up, ${RUNS} runs`,
    throughput,
    '',
    `(b) Open loop: ${RATE} messages/s by the clock, latency from scheduled send to reply, ${SECONDS} s (${SECONDS * RATE} messages) after ${WARMUP_SECONDS} s warm-up, ${RUNS} runs`,
    latency,
    '    (medians over runs; "send lag" is how late the load generator itself fired, worst run)',
    '',
    `CPU during (a), ${coresNote()}, medians over runs`,
    cpu,
  ];
  const redis = results.find((r) => r.target.label === REDIS_TARGET);
  if (redis) {
    const rps = median(redis.closed.map((r) => r.perSecond));
    const p99 = median(redis.open.map((r) => r.p99));
    lines.push(
      '',
      'Targets, agent with Redis memory:',
      `  throughput ${int(rps)} msg/s at ${CONCURRENCY} concurrent  (target >= ${int(TARGET_MSGS_PER_S)}): ${rps >= TARGET_MSGS_PER_S ? 'MET' : 'BELOW'}`,
      `  p99 ${ms(p99)} ms at ${RATE} msg/s  (target <= ${TARGET_P99_MS} ms): ${p99 <= TARGET_P99_MS ? 'MET' : 'ABOVE'}`,
    );
  }
  for (const { target } of results) {
    if (target.firstError) lines.push(`  first error from ${target.label}: ${target.firstError}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main.

async function main(): Promise<void> {
  console.log(machineLine('HTTP bench'));
  console.log('processes: load generator (this), fake provider (child), agent (child), redis-server (child)');

  const fake = await startFakeProvider();
  const basePids: Pids = { loadGenerator: process.pid };
  if (fake.handle.child.pid !== undefined) basePids.fakeProvider = fake.handle.child.pid;
  const targets: Target[] = [];
  if (TARGETS.includes('baseline')) {
    targets.push(completionsTarget('baseline: fake provider direct', fake.baseURL, basePids));
  }
  if (TARGETS.includes('barehop')) {
    const hop = await startBareHop(fake.baseURL);
    const pids: Pids = { ...basePids, agent: hop.handle.child.pid };
    targets.push(completionsTarget('bare hop: fastify + openai SDK', `${hop.url}/v1`, pids));
  }
  const agentEnv = { OPENAI_BASE_URL: fake.baseURL, OPENAI_MODEL: 'fake-model' };
  if (COMPARE_MAIN) console.log(`compared with: ${COMPARE_MAIN} (targets marked "[compared]")`);
  const builds = [
    { mainJs: undefined, suffix: '' },
    ...(COMPARE_MAIN ? [{ mainJs: COMPARE_MAIN, suffix: ' [compared]' }] : []),
  ];
  if (TARGETS.includes('log')) {
    for (const { mainJs, suffix } of builds) {
      const agent = await startAgent(`agent (log memory)${suffix}`, agentEnv, mainJs);
      const pids: Pids = { ...basePids, agent: agent.handle.child.pid };
      targets.push(agentTarget(`agent, log memory${suffix}`, agent.url, pids));
    }
  }
  const redisTargets = [
    { key: 'redis', label: REDIS_TARGET, args: [] },
    { key: 'redis-everysec', label: 'agent, redis (fsync everysec)', args: ['--appendfsync', 'everysec'] },
  ];
  for (const { key, label, args } of redisTargets) {
    if (!TARGETS.includes(key)) continue;
    const redis = stopAtCleanup(await startRedis({ args }));
    for (const [i, { mainJs, suffix }] of builds.entries()) {
      const agent = await startAgent(
        `${label}${suffix}`,
        { ...agentEnv, REDIS_URL: redis.url, REDIS_KEY_PREFIX: `bench-${process.pid}-${i}` },
        mainJs,
      );
      const pids: Pids = { ...basePids, agent: agent.handle.child.pid, redis: await redisPid(redis.url) };
      targets.push(agentTarget(`${label}${suffix}`, agent.url, pids));
    }
  }
  if (targets.length === 0) throw new Error(`BENCH_TARGETS="${TARGETS.join(',')}" names no target`);

  const results: TargetResults[] = targets.map((target) => ({ target, closed: [], open: [] }));
  for (const result of results) {
    process.stdout.write(`priming ${result.target.label} (${PRIME_SECONDS} s)...\n`);
    await closedLoop(result.target, 0, PRIME_SECONDS);
  }
  // Runs interleave the targets, so a noisy minute on the machine hits all of them alike.
  for (let run = 1; run <= RUNS; run += 1) {
    for (const result of results) {
      const closed = await closedLoop(result.target, WARMUP_SECONDS, SECONDS);
      result.closed.push(closed);
      const open = await openLoopOf(result.target, WARMUP_SECONDS, SECONDS);
      result.open.push(open);
      const { cpu } = closed;
      const others = otherProcessesCpu(cpu);
      console.log(
        `run ${run}/${RUNS} ${result.target.label.padEnd(32)} ${int(closed.perSecond).padStart(6)} msg/s` +
          (cpu.agent === undefined ? '' : ` (agent CPU ${cpu.agent.toFixed(0)}%)`) +
          (Number.isFinite(others) ? ` (other processes ${Math.max(0, others).toFixed(0)}%)` : '') +
          `  | ${RATE}/s: p50 ${ms(open.p50)} p99 ${ms(open.p99)} max ${ms(open.max)} ms` +
          (closed.errors + open.errors > 0 ? `  errors ${closed.errors + open.errors}` : ''),
      );
    }
  }
  console.log(report(results));
  console.log(`\nload average ${loadAverage()} at end`);

  for (const target of targets) await target.close();
  for (const child of runningChildren()) {
    const noisy = child.output.filter((l) => !l.includes('"level":30'));
    if (noisy.length > 0) console.log(`\n${child.name} logged:\n  ${noisy.slice(-10).join('\n  ')}`);
  }
  if (results.some((r) => [...r.closed, ...r.open].some((x) => x.errors > 0))) process.exitCode = 1;
}

if (process.argv.includes('--fake-provider')) {
  await runFakeProviderChild();
} else {
  // Everything is bounded: a stuck run ends the bench (and its children) instead of hanging.
  const budgetMs =
    (60 + (TARGETS.length * (PRIME_SECONDS + RUNS * 2 * (WARMUP_SECONDS + SECONDS + 2)) + 30)) * 1000;
  await runBench(main, budgetMs);
}
