/**
 * Provider-gateway benchmark: the agent's OpenAI-compatible endpoint in front of two fake
 * upstreams, healthy and while the primary fails, against the upstream hit directly.
 *
 *   npm run bench:gateway
 *
 * Cases, each measured BENCH_RUNS times (runs interleave the cases; medians and every run are
 * printed):
 *   - direct: POST /v1/chat/completions straight to the primary fake upstream;
 *   - bare hop (a reference, not judged): the same request through the least a Node hop through
 *     the `openai` SDK does (bench/bare-hop-process.ts: fastify, the SDK, a keep-alive dispatcher;
 *     nothing else), so what the gateway adds over any such hop shows in the same run;
 *   - gateway, healthy: the same request to the agent's POST /v1/chat/completions, which the
 *     gateway sends to the primary;
 *   - gateway, primary 500: the primary answers every request, health probes included, with 500;
 *     traffic is sent until the primary's breaker opens (GET /api/status), then measured while
 *     the gateway sends everything to the secondary;
 *   - gateway, primary hangs: the same with a primary that never answers (each attempt gives up
 *     after gateway.attemptTimeoutMs, so the breaker opens after its first failures).
 *
 * Measurements, per case and run:
 *   - closed loop: BENCH_CONCURRENCY clients, each sending its next request once the previous one
 *     is answered, for BENCH_THROUGHPUT_SECONDS after BENCH_WARMUP_SECONDS of warm-up: requests/s;
 *   - open loop: BENCH_RATE requests/s scheduled by the clock (not by replies) for
 *     BENCH_LATENCY_SECONDS after the same warm-up; latency runs from the scheduled send time to
 *     the reply, so a stall counts against every request it delays (no coordinated omission);
 *   - "added p99": the gateway case's p99 minus the direct p99 of the same run;
 *   - what reached the primary upstream from the moment its breaker was open (warm-ups
 *     included): chat completions, and everything else (the gateway's health probes).
 * Every reply is checked: the echoed text, and which provider answered (`model` is
 * `<provider>/<model>`: the primary when healthy, the secondary while it fails).
 *
 * Targets (2-core machine): added p99 <= 2 ms at 200 requests/s, healthy and with the breaker
 * open; >= 2,000 requests/s at 16 clients while failing over; once the breaker is open, the failed
 * primary receives health probes only.
 *
 * Processes: this one is the load generator only. Both fake upstreams run in one child process
 * (bench/fake-upstream-process.ts), the bare hop in another (bench/bare-hop-process.ts), and the
 * agent runs as the built dist/main.js
 * (started as startAgentProcess does) with LOG_LEVEL=warn and its own config file (AGENT_CONFIG).
 *
 * Environment knobs: BENCH_RUNS (3), BENCH_THROUGHPUT_SECONDS (3), BENCH_LATENCY_SECONDS (5),
 * BENCH_WARMUP_SECONDS (1), BENCH_CONCURRENCY (16), BENCH_RATE (200),
 * BENCH_CASES (direct,barehop,healthy,status500,hang; also chat500: the primary fails chat completions
 * only and its health probe succeeds), BENCH_DATA_DIR (where the agent's data directory is made;
 * default the OS temp dir: the cost ledger is appended and fdatasync'd there, in the background
 * of the replies, and /dev/shm takes that disk out), BENCH_AGENT_NODE_ARGS (node arguments for the
 * agent, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"; the profile is written when the agent exits),
 * BENCH_COMPARE_MAIN (the dist/main.js of another build, e.g. an older commit's checkout: a second
 * agent runs it beside this build's, and every gateway case is also measured through it, in the
 * same runs, so the two builds are compared on the same minute of a noisy machine).
 */
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { FakeFaultSetting } from '../test/fakes/fake-openai.js';
import { MAIN_JS } from '../test/support/agent-process.js';
import { freePort } from '../test/support/free-port.js';
import type {
  UpstreamCommand,
  UpstreamCounts,
  UpstreamName,
  UpstreamReady,
  UpstreamReply,
} from './fake-upstream-process.js';
import { startBareHop } from './support/bare-hop.js';
import { type CpuSample, cpuPercent, otherProcessesCpu, sampleCpu } from './support/cpu.js';
import { intEnv, keepAliveAgent, type OpenResult, openLoop } from './support/load.js';
import { agentDir, type Child, runBench, spawnNode, untilReady } from './support/processes.js';
import { coresNote, eachRun, int, loadAverage, machineLine, ms, pct, table } from './support/report.js';
import { median } from './support/stats.js';

const RUNS = intEnv('BENCH_RUNS', 3);
const THROUGHPUT_SECONDS = intEnv('BENCH_THROUGHPUT_SECONDS', 3);
const LATENCY_SECONDS = intEnv('BENCH_LATENCY_SECONDS', 5);
const WARMUP_SECONDS = intEnv('BENCH_WARMUP_SECONDS', 1);
const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 16);
const RATE = intEnv('BENCH_RATE', 200);
const DEFAULT_CASES = ['direct', 'barehop', 'healthy', 'status500', 'hang'] as const;
/** `chat500` (opt-in): the primary fails chat completions only, while its health probe succeeds. */
const ALL_CASES = [...DEFAULT_CASES, 'chat500'] as const;
type CaseKey = (typeof ALL_CASES)[number];
const CASES = (process.env.BENCH_CASES ?? DEFAULT_CASES.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '');
/** The agent's data directory (its cost ledger, fsync'd per reply) is made under this. */
const DATA_PARENT = process.env.BENCH_DATA_DIR || os.tmpdir();
/** Another build's dist/main.js to measure beside this one (see the header). */
const COMPARE_MAIN = process.env.BENCH_COMPARE_MAIN;
/** Extra node arguments for the agent, space-separated (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`). */
const AGENT_NODE_ARGS = (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
/** No single request may hang a run: undici gives up on it after this long. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Unmeasured load on each target before the first run, so JIT warm-up is not in any run. */
const PRIME_SECONDS = 2;
/** Longest wait for the primary's breaker to open (under load) or close again (by a probe). */
const BREAKER_WAIT_MS = 30_000;
const MODEL = 'fake-model';

/** The gateway's settings for the bench; everything not named here keeps its default. */
const GATEWAY_CONFIG = {
  strategy: 'priority',
  // A hung primary costs each request this long until the breaker opens (default 12 s).
  attemptTimeoutMs: 1000,
  deadlineMs: 10_000,
  // Probes every second, and an open breaker may be closed by one after a second, so the next
  // case starts with a healthy primary soon after its fault is cleared.
  probeEveryMs: 1000,
  breaker: { consecutiveFailures: 5, halfOpenAfterMs: 1000 },
};

const TARGET_ADDED_P99_MS = 2;
const TARGET_FAILOVER_RPS = 2000;

// ---------------------------------------------------------------------------------------------
// Processes.

/** The fake upstreams' process, and a typed IPC client for it. */
interface Upstreams {
  handle: Child;
  urls: UpstreamReady['upstreams'];
  setFault(upstream: UpstreamName, fault: FakeFaultSetting | undefined): Promise<void>;
  counts(): Promise<Record<UpstreamName, UpstreamCounts>>;
}

async function startUpstreams(): Promise<Upstreams> {
  const handle = spawnNode(
    'fake upstreams',
    [...process.execArgv, join(import.meta.dirname, 'fake-upstream-process.ts')],
    { PATH: process.env.PATH ?? '' },
  );
  const { child, output } = handle;
  const pending = new Map<number, (reply: UpstreamReply) => void>();
  let nextId = 1;
  child.on('message', (message: UpstreamReady | UpstreamReply) => {
    if ('type' in message) return;
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  void handle.exited.then(() => {
    const error = `fake upstreams exited (${child.exitCode ?? child.signalCode}):\n${output.join('\n')}`;
    for (const settle of pending.values()) settle({ id: 0, ok: false, error });
    pending.clear();
  });
  const { upstreams } = await untilReady(
    handle,
    15_000,
    (m): m is UpstreamReady => typeof m === 'object' && m !== null && 'type' in m,
  );
  const call = (command: Omit<UpstreamCommand, 'id'>) =>
    new Promise<Record<UpstreamName, UpstreamCounts>>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, (reply) => (reply.ok ? resolve(reply.counts) : reject(new Error(reply.error))));
      child.send({ ...command, id });
    });
  return {
    handle,
    urls: upstreams,
    setFault: async (upstream, fault) => {
      await call({ cmd: 'setFault', upstream, fault } as Omit<UpstreamCommand, 'id'>);
    },
    counts: () => call({ cmd: 'counts' }),
  };
}

/**
 * The built agent (dist/main.js) with both fakes as its providers, primary first. Started like
 * test/support/agent-process.ts does (ready once it sends 'ready' over IPC), plus
 * BENCH_AGENT_NODE_ARGS on its command line: `--cpu-prof` is not allowed in NODE_OPTIONS.
 */
async function startAgent(
  urls: UpstreamReady['upstreams'],
  mainJs: string = MAIN_JS,
): Promise<{ handle: Child; url: string }> {
  const provider = (id: UpstreamName) => ({
    id,
    kind: 'openai',
    baseURL: urls[id].baseURL,
    model: MODEL,
    apiKey: 'bench-not-a-real-key',
    // gpt-4o-mini's price, so the cost path (reserve, settle, ledger) runs as it would for real.
    price: { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  });
  const config = {
    // The default limit (600 a minute per client) would answer most of the load with 429; the
    // limiter itself stays in the path, so its cost is measured.
    http: { rateLimit: { max: 1_000_000_000, windowMs: 60_000 } },
    providers: [provider('primary'), provider('secondary')],
    gateway: GATEWAY_CONFIG,
  };
  const { configPath, dataDir } = agentDir(DATA_PARENT, 'gateway-bench-', config);
  const port = String(await freePort());
  // All of its output is kept: summarizeLog() counts every warning.
  const handle = spawnNode(
    'agent',
    [...AGENT_NODE_ARGS, mainJs, 'start'],
    {
      PATH: process.env.PATH ?? '',
      LOCAL_LLM_PROBE: 'false',
      AGENT_CONFIG: configPath,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      HTTP_PORT: port,
    },
    Number.POSITIVE_INFINITY,
  );
  await untilReady(handle, 20_000, (m): m is 'ready' => m === 'ready');
  return { handle, url: `http://127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------------------------
// Load.

interface Target {
  label: string;
  /** Sends request number `seq`; resolves with undefined when answered correctly, else the problem. */
  send: (seq: number) => Promise<string | undefined>;
  close: () => Promise<void>;
}

function question(seq: number): string {
  return `Hello, this is request ${seq}: how is it going today?`;
}

/** A short chat completion, the same for the upstream and the gateway (which ignores `model`). */
function completionBody(model: string, seq: number): string {
  return JSON.stringify({
    model,
    messages: [
      { role: 'system', content: 'You are a helpful, concise assistant.' },
      { role: 'user', content: question(seq) },
    ],
  });
}

/**
 * POSTs to `url` and checks the reply: the fake's echo of the question and, when `expectModel`
 * is set, the `model` that answered (the gateway reports `<provider>/<model>`).
 */
function completionTarget(label: string, url: string, model: string, expectModel: string): Target {
  const dispatcher = keepAliveAgent(CONCURRENCY * 4, REQUEST_TIMEOUT_MS);
  return {
    label,
    async send(seq) {
      try {
        const response = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer bench-not-a-real-key' },
          body: completionBody(model, seq),
          dispatcher,
        });
        const body = await response.body.text();
        if (response.statusCode !== 200) return `HTTP ${response.statusCode}: ${body.slice(0, 300)}`;
        const parsed = JSON.parse(body) as { model?: string; choices?: { message?: { content?: string } }[] };
        if (parsed.choices?.[0]?.message?.content !== `echo: ${question(seq)}`)
          return `unexpected reply: ${body.slice(0, 300)}`;
        if (parsed.model !== expectModel)
          return `answered by "${parsed.model}", expected "${expectModel}": ${body.slice(0, 300)}`;
        return undefined;
      } catch (error) {
        return String((error as Error).message ?? error);
      }
    },
    close: () => dispatcher.close(),
  };
}

interface ClosedResult {
  perSecond: number;
  errors: number;
  firstError?: string;
  /** Percent of one core used by each process while measuring. */
  cpu: CpuSample<CpuRole>;
}

/** Every client sends its next request when the previous one is answered. */
async function closedLoop(
  target: Target,
  pids: Pids,
  warmupS: number,
  measureS: number,
): Promise<ClosedResult> {
  const measureFrom = performance.now() + warmupS * 1000;
  const measureTo = measureFrom + measureS * 1000;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  // CPU is sampled when measuring starts and ends; a late timer (a busy machine) is allowed for
  // by dividing by the time that really passed between the two samples.
  let cpuBefore: { at: number; sample: CpuSample<CpuRole> } | undefined;
  let cpuAfter: { at: number; sample: CpuSample<CpuRole> } | undefined;
  const startSampler = setTimeout(() => {
    cpuBefore = { at: performance.now(), sample: sampleCpu(pids) };
  }, measureFrom - performance.now());
  const endSampler = setTimeout(() => {
    cpuAfter = { at: performance.now(), sample: sampleCpu(pids) };
  }, measureTo - performance.now());
  let seq = 0;
  const worker = async () => {
    while (performance.now() < measureTo) {
      const problem = await target.send(seq++);
      const end = performance.now();
      if (end >= measureFrom && end < measureTo) {
        if (problem === undefined) completed += 1;
        else {
          errors += 1;
          firstError ??= problem;
        }
      }
      // Do not spin on a target that answers errors instantly.
      if (problem !== undefined) await sleep(10);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
  clearTimeout(startSampler);
  clearTimeout(endSampler);
  cpuAfter ??= { at: performance.now(), sample: sampleCpu(pids) };
  return {
    perSecond: completed / measureS,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    cpu: cpuBefore ? cpuPercent(cpuBefore.sample, cpuAfter.sample, cpuAfter.at - cpuBefore.at) : {},
  };
}

// ---------------------------------------------------------------------------------------------
// The primary's breaker, as GET /api/status reports it.

type BreakerName = 'closed' | 'open' | 'half-open' | 'isolated' | 'open elsewhere';

async function primaryBreaker(agentUrl: string): Promise<BreakerName | undefined> {
  const response = await request(`${agentUrl}/api/status`);
  const body = (await response.body.json()) as { providers?: { id: string; breaker: BreakerName }[] };
  return body.providers?.find((p) => p.id === 'primary')?.breaker;
}

/**
 * Sends gateway traffic (CONCURRENCY clients) until the primary's breaker is open, then lets the
 * requests in flight finish, so none of them can reach the primary after the caller's next look
 * at its counters. Resolves with how long that took.
 */
async function openPrimaryBreaker(agentUrl: string, target: Target): Promise<number> {
  const started = performance.now();
  let open = false;
  let seq = 1_000_000_000;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (!open && performance.now() - started < BREAKER_WAIT_MS) {
      if ((await target.send(seq++)) !== undefined) await sleep(10);
    }
  });
  while (!open && performance.now() - started < BREAKER_WAIT_MS) {
    open = (await primaryBreaker(agentUrl)) === 'open';
    if (!open) await sleep(20);
  }
  open = true;
  await Promise.all(workers);
  if ((await primaryBreaker(agentUrl)) !== 'open')
    throw new Error(`the primary's breaker did not open within ${BREAKER_WAIT_MS} ms (or closed again)`);
  return performance.now() - started;
}

/** After a fault is cleared: waits until a health probe has closed the primary's breaker. */
async function waitPrimaryClosed(agentUrl: string): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < BREAKER_WAIT_MS) {
    if ((await primaryBreaker(agentUrl)) === 'closed') return performance.now() - started;
    await sleep(50);
  }
  throw new Error(`the primary's breaker did not close within ${BREAKER_WAIT_MS} ms of its fault clearing`);
}

// ---------------------------------------------------------------------------------------------
// CPU accounting (support/cpu.ts): which process the machine's two cores are spent in.

interface Pids {
  loadGenerator: number;
  upstreams?: number;
  agent?: number;
}

type CpuRole = keyof Pids;

// ---------------------------------------------------------------------------------------------
// Cases.

interface BenchCase {
  key: CaseKey;
  label: string;
  target: Target;
  /** The primary's fault while this case is measured; the breaker is opened before measuring. */
  fault?: FakeFaultSetting;
  /** Not one of the issue's cases: its figures are shown, not judged. */
  informational?: boolean;
  /** The agent it goes through (gateway cases): its URL and process id. */
  agent?: { url: string; pid: number | undefined };
  /** Measured through the other build (BENCH_COMPARE_MAIN): shown beside this build's, not judged. */
  compared?: boolean;
  /** A reference hop that is not the agent (the bare hop): shown, not judged. */
  reference?: boolean;
}

interface CaseRun {
  closed: ClosedResult;
  open: OpenResult;
  /** Time from setting the fault to the breaker open with nothing in flight (failover cases). */
  openedInMs?: number;
  /** Time from clearing the fault to a probe closing the breaker (failover cases). */
  closedInMs?: number;
  /** What reached the primary upstream during the measured loops, warm-ups included. */
  primary: UpstreamCounts;
  /** How long that window was, in seconds. */
  windowS: number;
}

interface CaseResults {
  benchCase: BenchCase;
  runs: CaseRun[];
}

/** `pids` has no agent: the case's own (if it goes through one) is added. */
async function runCase(benchCase: BenchCase, upstreams: Upstreams, processes: Pids): Promise<CaseRun> {
  const agentUrl = benchCase.agent?.url ?? '';
  const pids: Pids =
    benchCase.agent?.pid !== undefined ? { ...processes, agent: benchCase.agent.pid } : processes;
  let openedInMs: number | undefined;
  if (benchCase.fault) {
    await upstreams.setFault('primary', benchCase.fault);
    openedInMs = await openPrimaryBreaker(agentUrl, benchCase.target);
  }
  const before = await upstreams.counts();
  const from = performance.now();
  const closed = await closedLoop(benchCase.target, pids, WARMUP_SECONDS, THROUGHPUT_SECONDS);
  const open = await openLoop(benchCase.target.send, RATE, WARMUP_SECONDS, LATENCY_SECONDS);
  const after = await upstreams.counts();
  const windowS = (performance.now() - from) / 1000;
  let closedInMs: number | undefined;
  if (benchCase.fault) {
    const breaker = await primaryBreaker(agentUrl);
    if (!benchCase.informational && breaker !== 'open' && breaker !== 'half-open')
      throw new Error(`the primary's breaker was "${breaker}" at the end of "${benchCase.label}"`);
    await upstreams.setFault('primary', undefined);
    closedInMs = await waitPrimaryClosed(agentUrl);
  }
  return {
    closed,
    open,
    ...(openedInMs !== undefined ? { openedInMs } : {}),
    ...(closedInMs !== undefined ? { closedInMs } : {}),
    primary: {
      chat: after.primary.chat - before.primary.chat,
      probes: after.primary.probes - before.primary.probes,
    },
    windowS,
  };
}

// ---------------------------------------------------------------------------------------------
// Report.

const signedMs = (n: number) => (Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${ms(n)}` : 'n/a');

/** The gateway case's p99 minus the direct p99, run by run. */
function addedP99(results: CaseResults[], result: CaseResults): number[] {
  const direct = results.find((r) => r.benchCase.key === 'direct');
  if (!direct || result === direct) return [];
  return result.runs.map((run, i) => run.open.p99 - (direct.runs[i]?.open.p99 ?? Number.NaN));
}

function report(results: CaseResults[]): string {
  const summary = table(
    [
      'case',
      `req/s @${CONCURRENCY} clients`,
      `p50 ms @${RATE}/s`,
      `p99 ms @${RATE}/s`,
      'added p99 vs direct',
      'primary got (chat / probes)',
      'errors',
    ],
    results.map((result) => {
      const { benchCase, runs: caseRuns } = result;
      const added = addedP99(results, result);
      const chat = caseRuns.reduce((n, r) => n + r.primary.chat, 0);
      const probes = caseRuns.reduce((n, r) => n + r.primary.probes, 0);
      const errors = caseRuns.reduce((n, r) => n + r.closed.errors + r.open.errors, 0);
      return [
        benchCase.label,
        int(median(caseRuns.map((r) => r.closed.perSecond))),
        ms(median(caseRuns.map((r) => r.open.p50))),
        ms(median(caseRuns.map((r) => r.open.p99))),
        added.length > 0 ? `${signedMs(median(added))} ms` : '-',
        `${int(chat)} / ${int(probes)}`,
        String(errors),
      ];
    }),
  );
  const detail = table(
    ['case', 'req/s, each run', 'p99 ms, each run', 'added p99, each run', 'max ms, each run', 'send lag'],
    results.map((result) => {
      const { benchCase, runs: caseRuns } = result;
      const added = addedP99(results, result);
      return [
        benchCase.label,
        eachRun(
          caseRuns.map((r) => r.closed.perSecond),
          int,
        ),
        eachRun(
          caseRuns.map((r) => r.open.p99),
          ms,
        ),
        added.length > 0 ? eachRun(added, signedMs) : '-',
        eachRun(
          caseRuns.map((r) => r.open.max),
          ms,
        ),
        `${ms(Math.max(...caseRuns.map((r) => r.open.maxSendLagMs)))} ms`,
      ];
    }),
  );
  const failovers = results.filter((r) => r.benchCase.fault);
  const breakerTable = table(
    ['case', 'breaker opened in', 'closed again in', 'window measured', 'primary chat', 'primary probes'],
    failovers.map(({ benchCase, runs: caseRuns }) => [
      benchCase.label,
      `${eachRun(
        caseRuns.map((r) => r.openedInMs ?? Number.NaN),
        int,
      )} ms`,
      `${eachRun(
        caseRuns.map((r) => r.closedInMs ?? Number.NaN),
        int,
      )} ms`,
      `${eachRun(
        caseRuns.map((r) => r.windowS),
        (n) => n.toFixed(1),
      )} s`,
      eachRun(
        caseRuns.map((r) => r.primary.chat),
        int,
      ),
      eachRun(
        caseRuns.map((r) => r.primary.probes),
        int,
      ),
    ]),
  );
  const cpuOf = (caseRuns: CaseRun[], role: CpuRole) => {
    const values = caseRuns.map((r) => r.closed.cpu[role]).filter((v): v is number => v !== undefined);
    return values.length > 0 ? median(values) : undefined;
  };
  const cpu = table(
    ['case', 'load gen', 'fake upstreams', 'agent / hop', 'other processes', 'its CPU per request'],
    results.map(({ benchCase, runs: caseRuns }) => {
      const others = caseRuns.map((r) => otherProcessesCpu(r.closed.cpu)).filter((v) => Number.isFinite(v));
      const agent = benchCase.key === 'direct' ? undefined : cpuOf(caseRuns, 'agent');
      const rps = median(caseRuns.map((r) => r.closed.perSecond));
      return [
        benchCase.label,
        pct(cpuOf(caseRuns, 'loadGenerator')),
        pct(cpuOf(caseRuns, 'upstreams')),
        benchCase.key === 'direct' ? '(idle)' : pct(agent),
        others.length > 0 ? pct(Math.max(0, median(others))) : '-',
        agent === undefined ? '-' : `${int((agent * 10_000) / rps)} us`,
      ];
    }),
  );

  const lines = [
    '',
    `Gateway bench: medians over ${RUNS} runs. Throughput: closed loop, ${CONCURRENCY} clients, ${THROUGHPUT_SECONDS} s after ${WARMUP_SECONDS} s warm-up.`,
    `Latency: open loop, ${RATE} requests/s by the clock, from scheduled send to reply, ${LATENCY_SECONDS} s (${int(LATENCY_SECONDS * RATE)} requests) after ${WARMUP_SECONDS} s warm-up.`,
    '"added p99" is each run\'s p99 minus the direct p99 of the same run (median over runs).',
    '"primary got": requests that reached the primary upstream during the measured loops (warm-ups included), all runs; for the',
    'failure cases that is everything after its breaker opened.',
    summary,
    '',
    'Every run:',
    detail,
    '    ("send lag" is how late the load generator itself fired, worst run)',
  ];
  if (failovers.length > 0) lines.push('', 'Failure cases, every run:', breakerTable);
  lines.push('', `CPU during the throughput loop, ${coresNote()}, medians over runs`, cpu, '', 'Targets:');
  for (const result of results) {
    const { benchCase, runs: caseRuns } = result;
    if (benchCase.key === 'direct' || benchCase.compared || benchCase.reference) continue;
    const added = median(addedP99(results, result));
    const when = !benchCase.fault
      ? 'healthy'
      : benchCase.informational
        ? 'after the breaker first opened'
        : 'with the breaker open';
    const mark = (ok: boolean) => (benchCase.informational ? 'info' : ok ? 'PASS' : 'FAIL');
    if (Number.isFinite(added)) {
      lines.push(
        `  [${mark(added <= TARGET_ADDED_P99_MS)}] ${benchCase.label}: added p99 over direct ${signedMs(added)} ms at ${RATE} req/s, ${when} (target <= ${TARGET_ADDED_P99_MS} ms)`,
      );
    } else {
      lines.push(`  [ -- ] ${benchCase.label}: added p99 needs the direct case (BENCH_CASES)`);
    }
    if (!benchCase.fault) continue;
    const rps = median(caseRuns.map((r) => r.closed.perSecond));
    lines.push(
      `  [${mark(rps >= TARGET_FAILOVER_RPS)}] ${benchCase.label}: ${int(rps)} req/s at ${CONCURRENCY} clients while failing over (target >= ${int(TARGET_FAILOVER_RPS)})`,
    );
    const chat = caseRuns.reduce((n, r) => n + r.primary.chat, 0);
    const probes = caseRuns.reduce((n, r) => n + r.primary.probes, 0);
    const seconds = caseRuns.reduce((n, r) => n + r.windowS, 0);
    lines.push(
      `  [${mark(chat === 0)}] ${benchCase.label}: after its breaker opened the primary got ${int(chat)} chat requests and ${int(probes)} health probes in ${seconds.toFixed(0)} s (target: probes only)`,
    );
  }
  if (results.some((r) => r.benchCase.informational)) {
    lines.push(
      "  ([info]: chat500 is not one of the issue's cases: the health probe, a model list, still succeeds there, so each probe closes the breaker again and chat requests reach the primary until it reopens)",
    );
  }
  for (const { benchCase, runs: caseRuns } of results) {
    const first = caseRuns.map((r) => r.closed.firstError ?? r.open.firstError).find((e) => e !== undefined);
    if (first) lines.push(`  first error from ${benchCase.label}: ${first}`);
  }
  return lines.join('\n');
}

/** The agent's log lines (warn and above), counted by message. */
function summarizeLog(lines: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) {
    let key = line.slice(0, 160);
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; provider?: string };
      key = `${entry.msg ?? '?'}${entry.provider ? ` (${entry.provider})` : ''}`;
    } catch {}
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([message, n]) => `${String(n).padStart(5)} x ${message}`);
}

/** Every case, its gateway cases going through the agent at `agent` (labels get `suffix`). */
function casesThrough(
  agent: NonNullable<BenchCase['agent']>,
  upstreams: Upstreams,
  bareHop: NonNullable<BenchCase['agent']> | undefined,
  suffix = '',
): Record<CaseKey, () => BenchCase> {
  const viaGateway = `${agent.url}/v1/chat/completions`;
  const gatewayCase = (
    key: Exclude<CaseKey, 'direct' | 'barehop'>,
    label: string,
    expectModel: string,
    extra: Pick<BenchCase, 'fault' | 'informational'> = {},
  ): BenchCase => ({
    key,
    label: `${label}${suffix}`,
    target: completionTarget(`${key}${suffix}`, viaGateway, 'auto', expectModel),
    agent,
    ...(suffix ? { compared: true } : {}),
    ...extra,
  });
  return {
    direct: () => ({
      key: 'direct',
      label: 'direct to upstream',
      target: completionTarget('direct', `${upstreams.urls.primary.baseURL}/chat/completions`, MODEL, MODEL),
    }),
    barehop: () => ({
      key: 'barehop',
      label: 'bare hop: fastify + openai SDK',
      target: completionTarget('barehop', `${bareHop?.url}/v1/chat/completions`, MODEL, MODEL),
      ...(bareHop ? { agent: bareHop } : {}),
      reference: true,
    }),
    healthy: () => gatewayCase('healthy', 'gateway, healthy', `primary/${MODEL}`),
    status500: () =>
      gatewayCase('status500', 'gateway, primary 500', `secondary/${MODEL}`, {
        fault: { kind: 'status', status: 500, probes: true },
      }),
    hang: () =>
      gatewayCase('hang', 'gateway, primary hangs', `secondary/${MODEL}`, {
        fault: { kind: 'hang', probes: true },
      }),
    chat500: () =>
      gatewayCase('chat500', 'gateway, primary 500 chat only', `secondary/${MODEL}`, {
        fault: { kind: 'status', status: 500 },
        informational: true,
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Main.

async function main(): Promise<void> {
  const unknown = CASES.filter((c) => !(ALL_CASES as readonly string[]).includes(c));
  if (unknown.length > 0 || CASES.length === 0)
    throw new Error(`BENCH_CASES must list some of ${ALL_CASES.join(',')}; got "${CASES.join(',')}"`);
  console.log(machineLine('Gateway bench'));
  console.log('processes: load generator (this), fake upstreams primary + secondary (child), agent (child)');
  console.log(`gateway config: ${JSON.stringify(GATEWAY_CONFIG)}`);

  const upstreams = await startUpstreams();
  const agent = await startAgent(upstreams.urls);
  const compared = COMPARE_MAIN ? await startAgent(upstreams.urls, COMPARE_MAIN) : undefined;
  if (compared) console.log(`compared with: ${COMPARE_MAIN} (cases marked "[compared]")`);
  const pids: Pids = { loadGenerator: process.pid };
  if (upstreams.handle.child.pid !== undefined) pids.upstreams = upstreams.handle.child.pid;

  const hop = CASES.includes('barehop') ? await startBareHop(upstreams.urls.primary.baseURL) : undefined;
  const bareHop = hop ? { url: hop.url, pid: hop.handle.child.pid } : undefined;
  const all = casesThrough({ url: agent.url, pid: agent.handle.child.pid }, upstreams, bareHop);
  const twins = compared
    ? casesThrough({ url: compared.url, pid: compared.handle.child.pid }, upstreams, bareHop, ' [compared]')
    : undefined;
  const results: CaseResults[] = ALL_CASES.filter((key) => CASES.includes(key)).flatMap((key) => {
    const own = { benchCase: all[key](), runs: [] };
    const twin = twins && key !== 'direct' && key !== 'barehop';
    return twin ? [own, { benchCase: twins[key](), runs: [] }] : [own];
  });

  // JIT warm-up of both paths (the failover path only differs in which upstream it picks).
  for (const result of results.filter((r) => !r.benchCase.fault)) {
    process.stdout.write(`priming ${result.benchCase.label} (${PRIME_SECONDS} s)...\n`);
    await closedLoop(result.benchCase.target, pids, 0, PRIME_SECONDS);
  }
  // Runs interleave the cases, so a noisy minute on the machine hits all of them alike.
  for (let run = 1; run <= RUNS; run += 1) {
    for (const result of results) {
      const caseRun = await runCase(result.benchCase, upstreams, pids);
      result.runs.push(caseRun);
      const { closed, open } = caseRun;
      const others = otherProcessesCpu(closed.cpu);
      console.log(
        `run ${run}/${RUNS} ${result.benchCase.label.padEnd(24)} ${int(closed.perSecond).padStart(6)} req/s` +
          (result.benchCase.key === 'direct' || closed.cpu.agent === undefined
            ? ''
            : ` (agent CPU ${closed.cpu.agent.toFixed(0)}%)`) +
          (Number.isFinite(others) ? ` (others ${Math.max(0, others).toFixed(0)}%)` : '') +
          `  | ${RATE}/s: p50 ${ms(open.p50)} p99 ${ms(open.p99)} max ${ms(open.max)} ms` +
          (result.benchCase.fault
            ? `  | breaker open after ${int(caseRun.openedInMs ?? Number.NaN)} ms; primary got ${caseRun.primary.chat} chat, ${caseRun.primary.probes} probes`
            : '') +
          (closed.errors + open.errors > 0 ? `  errors ${closed.errors + open.errors}` : ''),
      );
    }
  }
  console.log(report(results));
  console.log(`\nload average ${loadAverage()} at end`);

  for (const { benchCase } of results) await benchCase.target.close();
  const logged = summarizeLog(agent.handle.output.filter((l) => l.trim() !== ''));
  if (logged.length > 0) console.log(`\nagent logged (warn and above), by message:\n${logged.join('\n')}`);
  const upstreamOutput = upstreams.handle.output;
  if (upstreamOutput.length > 0)
    console.log(`\nfake upstreams logged:\n  ${upstreamOutput.slice(-10).join('\n  ')}`);
  if (results.some((r) => r.runs.some((x) => x.closed.errors + x.open.errors > 0))) process.exitCode = 1;
}

// Everything is bounded: a stuck run ends the bench (and its children) instead of hanging.
const perCaseS = 2 * WARMUP_SECONDS + THROUGHPUT_SECONDS + LATENCY_SECONDS + 10;
const budgetMs = (60 + CASES.length * (PRIME_SECONDS + RUNS * perCaseS) + 30) * 1000;
await runBench(main, budgetMs);
