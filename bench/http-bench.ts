/**
 * HTTP throughput and latency benchmark of the agent, per memory backend, against a baseline.
 *
 *   npm run bench:http
 *
 * Targets, each measured BENCH_RUNS times (median and every run are printed):
 *   - baseline: the fake OpenAI provider's /v1/chat/completions, hit directly with a request shaped
 *     like the ones the agent sends (system prompt, 20 turns of context, the new message);
 *   - the agent with the local append-only log as memory;
 *   - the agent with Redis as memory (a private redis-server from startRedis(), AOF fsync always).
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
 * BENCH_CONCURRENCY (16), BENCH_RATE (200), BENCH_TARGETS (baseline,log,redis),
 * BENCH_AGENT_NODE_OPTIONS (NODE_OPTIONS for the agent, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { startFakeOpenAi } from '../test/fakes/fake-openai.js';
import { startAgentProcess } from '../test/support/agent-process.js';
import { startRedis, type TestRedis } from '../test/support/redis-server.js';

const RUNS = intEnv('BENCH_RUNS', 3);
const SECONDS = intEnv('BENCH_SECONDS', 5);
const WARMUP_SECONDS = intEnv('BENCH_WARMUP_SECONDS', 1);
const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 16);
const RATE = intEnv('BENCH_RATE', 200);
const TARGETS = (process.env.BENCH_TARGETS ?? 'baseline,log,redis').split(',').map((s) => s.trim());
const AGENT_NODE_OPTIONS = process.env.BENCH_AGENT_NODE_OPTIONS ?? '';
/** No single request may hang a run: undici gives up on it after this long. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Unmeasured load on each target before its first run, so JIT warm-up is not in any run. */
const PRIME_SECONDS = 2;

const TARGET_MSGS_PER_S = 1500;
const TARGET_P99_MS = 5;

function intEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Child mode: the fake provider in its own process.

async function runFakeProviderChild(): Promise<void> {
  const fake = await startFakeOpenAi({ record: false });
  const exit = () => void fake.close().finally(() => process.exit(0));
  // The parent going away (even by SIGKILL) closes the IPC channel: never outlive it.
  process.on('disconnect', exit);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  process.send?.({ url: fake.url, baseURL: fake.baseURL });
}

// ---------------------------------------------------------------------------------------------
// Processes.

interface Child {
  name: string;
  child: ChildProcess;
  output: string[];
  exited: Promise<void>;
}

const children = new Set<Child>();
const tempDirs = new Set<string>();
let redisServer: TestRedis | undefined;

/** Spawns a child with an IPC channel and resolves with its first IPC message. */
function spawnWithIpc<T>(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ handle: Child; message: T }> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) output.push(line);
      if (output.length > 200) output.splice(0, output.length - 200);
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle: Child = { name, child, output, exited };
  children.add(handle);
  void exited.then(() => children.delete(handle));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${output.join('\n')}`));
    }, timeoutMs);
    child.once('message', (message: T) => {
      clearTimeout(timer);
      resolve({ handle, message });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${output.join('\n')}`));
    });
  });
}

async function stopChild(handle: Child, graceMs = 10_000): Promise<void> {
  if (handle.child.exitCode !== null || handle.child.signalCode !== null) return;
  handle.child.kill('SIGTERM');
  const timer = setTimeout(() => handle.child.kill('SIGKILL'), graceMs);
  await handle.exited;
  clearTimeout(timer);
}

async function startFakeProvider(): Promise<{ handle: Child; url: string; baseURL: string }> {
  const { handle, message } = await spawnWithIpc<{ url: string; baseURL: string }>(
    'fake provider',
    [...process.execArgv, import.meta.filename, '--fake-provider'],
    { PATH: process.env.PATH ?? '' },
    15_000,
  );
  return { handle, ...message };
}

/** The built agent (dist/main.js) as its own process, with its own config and data directory. */
async function startAgent(
  name: string,
  env: Record<string, string>,
): Promise<{ handle: Child; url: string }> {
  const dir = mkdtempSync(join(os.tmpdir(), 'agent-bench-'));
  tempDirs.add(dir);
  const configPath = join(dir, 'agent.config.json');
  // The default limit (600 a minute per client) would answer most of the load with 429; the
  // limiter itself stays in the path, so its cost is measured.
  writeFileSync(
    configPath,
    JSON.stringify({ http: { rateLimit: { max: 1_000_000_000, windowMs: 60_000 } } }),
  );
  const agent = await startAgentProcess(
    {
      AGENT_CONFIG: configPath,
      DATA_DIR: join(dir, 'data'),
      LOG_LEVEL: 'warn',
      ...(AGENT_NODE_OPTIONS ? { NODE_OPTIONS: AGENT_NODE_OPTIONS } : {}),
      ...env,
    },
    20_000,
  );
  const handle: Child = {
    name,
    child: agent.child,
    output: agent.output,
    exited: agent.exited.then(() => {}),
  };
  children.add(handle);
  void handle.exited.then(() => children.delete(handle));
  return { handle, url: agent.url };
}

async function cleanup(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
  if (redisServer) {
    const redis = redisServer;
    redisServer = undefined;
    await redis.stop().catch(() => {});
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

// ---------------------------------------------------------------------------------------------
// Load.

interface Target {
  label: string;
  /** The processes serving this target, for CPU accounting. */
  pids: Pids;
  /** Sends one message of conversation `conversation`; resolves true when answered correctly. */
  send: (conversation: number, seq: number) => Promise<boolean>;
  firstError?: string;
  close: () => Promise<void>;
}

function keepAliveAgent(connections: number): Agent {
  return new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
}

function messageText(conversation: number, seq: number): string {
  return `Hello from conversation ${conversation}, message ${seq}: how is it going today?`;
}

function agentTarget(label: string, baseUrl: string, pids: Pids): Target {
  const dispatcher = keepAliveAgent(CONCURRENCY * 4);
  const target: Target = {
    label,
    pids,
    async send(conversation, seq) {
      const text = messageText(conversation, seq);
      try {
        const response = await request(`${baseUrl}/api/conversations/bench-${conversation}/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ text }),
          dispatcher,
        });
        const body = await response.body.text();
        if (response.statusCode !== 200)
          throw new Error(`HTTP ${response.statusCode}: ${body.slice(0, 200)}`);
        const reply = (JSON.parse(body) as { reply?: { text?: string } }).reply?.text;
        if (reply !== `echo: ${text}`) throw new Error(`unexpected reply: ${body.slice(0, 200)}`);
        return true;
      } catch (error) {
        target.firstError ??= String((error as Error).message ?? error);
        return false;
      }
    },
    close: () => dispatcher.close(),
  };
  return target;
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

function baselineTarget(baseURL: string, pids: Pids): Target {
  const dispatcher = keepAliveAgent(CONCURRENCY * 4);
  const target: Target = {
    label: 'baseline: fake provider direct',
    pids,
    async send(conversation, seq) {
      try {
        const response = await request(`${baseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer not-needed' },
          body: baselineBody(conversation, seq),
          dispatcher,
        });
        const body = await response.body.text();
        if (response.statusCode !== 200)
          throw new Error(`HTTP ${response.statusCode}: ${body.slice(0, 200)}`);
        const reply = (JSON.parse(body) as { choices?: { message?: { content?: string } }[] }).choices?.[0]
          ?.message?.content;
        if (reply !== `echo: ${messageText(conversation, seq)}`) throw new Error(`unexpected reply: ${body}`);
        return true;
      } catch (error) {
        target.firstError ??= String((error as Error).message ?? error);
        return false;
      }
    },
    close: () => dispatcher.close(),
  };
  return target;
}

interface ClosedResult {
  perSecond: number;
  errors: number;
  /** Percent of one core used by each process while measuring. */
  cpu: CpuSample;
}

/** Every conversation sends its next message when the previous one is answered. */
async function closedLoop(target: Target, warmupS: number, measureS: number): Promise<ClosedResult> {
  const measureFrom = performance.now() + warmupS * 1000;
  const measureTo = measureFrom + measureS * 1000;
  let completed = 0;
  let errors = 0;
  let cpuBefore: CpuSample = {};
  let cpuAfter: CpuSample = {};
  const startSampler = setTimeout(() => {
    cpuBefore = sampleCpu(target.pids);
  }, measureFrom - performance.now());
  const endSampler = setTimeout(() => {
    cpuAfter = sampleCpu(target.pids);
  }, measureTo - performance.now());
  const worker = async (conversation: number) => {
    let seq = 0;
    while (performance.now() < measureTo) {
      const ok = await target.send(conversation, seq);
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

interface OpenResult {
  p50: number;
  p99: number;
  max: number;
  sent: number;
  errors: number;
  /** How far the sender itself fell behind its schedule: a load generator health check. */
  maxSendLagMs: number;
}

/**
 * Sends RATE messages a second by the clock, round-robin over CONCURRENCY conversations,
 * whatever the replies do. Latency is measured from the scheduled send time.
 */
async function openLoop(target: Target, warmupS: number, measureS: number): Promise<OpenResult> {
  const interval = 1000 / RATE;
  const warmupCount = Math.round(warmupS * RATE);
  const total = warmupCount + Math.round(measureS * RATE);
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const seqs = new Array<number>(CONCURRENCY).fill(0);
  let errors = 0;
  let maxSendLagMs = 0;
  const start = performance.now() + 5;
  let index = 0;

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (index < total && start + index * interval <= now) {
        const scheduled = start + index * interval;
        const measured = index >= warmupCount;
        if (measured) maxSendLagMs = Math.max(maxSendLagMs, now - scheduled);
        const conversation = index % CONCURRENCY;
        const seq = seqs[conversation] as number;
        seqs[conversation] = seq + 1;
        pending.push(
          target.send(conversation, seq).then((ok) => {
            if (!measured) return;
            if (ok) latencies.push(performance.now() - scheduled);
            else errors += 1;
          }),
        );
        index += 1;
      }
      if (index >= total) return resolve();
      setTimeout(tick, Math.max(0, start + index * interval - performance.now()));
    };
    setTimeout(tick, 5);
  });
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  return {
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? Number.NaN,
    sent: total - warmupCount,
    errors,
    maxSendLagMs,
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting (Linux /proc): which process the machine's two cores are spent in.

interface Pids {
  loadGenerator: number;
  fakeProvider?: number;
  agent?: number;
  redis?: number;
}

const CPU_ROLES = ['loadGenerator', 'fakeProvider', 'agent', 'redis'] as const;
type CpuRole = (typeof CPU_ROLES)[number];
/** Per process, plus `machine`: every core's busy time, so other load on the machine shows. */
type CpuSample = Partial<Record<CpuRole | 'machine', number>>;

/** Busy (not idle, not iowait) CPU milliseconds of the whole machine, or undefined off Linux. */
function machineCpuMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return (ticks.reduce((a, b) => a + b, 0) - idle) * 10;
  } catch {
    return undefined;
  }
}

/** User plus system CPU milliseconds a process has used, or undefined off Linux. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

function sampleCpu(pids: Pids): CpuSample {
  const sample: CpuSample = {};
  for (const role of CPU_ROLES) {
    const pid = pids[role];
    const value = pid === undefined ? undefined : cpuMs(pid);
    if (value !== undefined) sample[role] = value;
  }
  const machine = machineCpuMs();
  if (machine !== undefined) sample.machine = machine;
  return sample;
}

/** CPU percent of one core for each process between two samples. */
function cpuPercent(before: CpuSample, after: CpuSample, elapsedMs: number): CpuSample {
  const out: CpuSample = {};
  for (const role of [...CPU_ROLES, 'machine'] as const) {
    const a = before[role];
    const b = after[role];
    if (a !== undefined && b !== undefined) out[role] = (100 * (b - a)) / elapsedMs;
  }
  return out;
}

async function redisPid(url: string): Promise<number | undefined> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    const info = await client.info('server');
    const match = /process_id:(\d+)/.exec(info);
    return match ? Number(match[1]) : undefined;
  } finally {
    client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

interface TargetResults {
  target: Target;
  closed: ClosedResult[];
  open: OpenResult[];
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : 'n/a');

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function report(results: TargetResults[]): string {
  const runs = (values: number[], format: (n: number) => string) => values.map(format).join(' / ');
  const throughput = table(
    ['target', 'msg/s (median)', `all ${RUNS} runs`, 'errors'],
    results.map(({ target, closed }) => [
      target.label,
      int(median(closed.map((r) => r.perSecond))),
      runs(
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
      runs(
        open.map((r) => r.p99),
        ms,
      ),
      runs(
        open.map((r) => r.max),
        ms,
      ),
      String(open.reduce((n, r) => n + r.errors, 0)),
      `${ms(Math.max(...open.map((r) => r.maxSendLagMs)))} ms`,
    ]),
  );
  const pct = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : `${n.toFixed(0)}%`);
  const cpuOf = (closed: ClosedResult[], role: CpuRole) => {
    const values = closed.map((r) => r.cpu[role]).filter((v): v is number => v !== undefined);
    return values.length > 0 ? median(values) : undefined;
  };
  const cpu = table(
    ['target', 'load gen', 'fake provider', 'agent', 'redis', 'other processes', 'agent CPU per msg'],
    results.map(({ target, closed }) => {
      const perRole = CPU_ROLES.map((role) => cpuOf(closed, role));
      // Everything else the machine ran meanwhile (other jobs), which the numbers above compete with.
      const others = closed
        .map((r) => CPU_ROLES.reduce((n, role) => n - (r.cpu[role] ?? 0), r.cpu.machine ?? Number.NaN))
        .filter((v) => Number.isFinite(v));
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
    `CPU during (a), percent of one core (${os.availableParallelism()} cores = ${os.availableParallelism() * 100}%), medians over runs`,
    cpu,
  ];
  const redis = results.find((r) => r.target.label.includes('redis'));
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
  const [cpu] = os.cpus();
  console.log(
    `HTTP bench: node ${process.version}, ${os.availableParallelism()} CPUs (${cpu?.model.trim() ?? '?'}), ` +
      `load average ${os
        .loadavg()
        .map((n) => n.toFixed(2))
        .join(' ')} at start`,
  );
  console.log('processes: load generator (this), fake provider (child), agent (child), redis-server (child)');

  const fake = await startFakeProvider();
  const basePids: Pids = { loadGenerator: process.pid };
  if (fake.handle.child.pid !== undefined) basePids.fakeProvider = fake.handle.child.pid;
  const targets: Target[] = [];
  if (TARGETS.includes('baseline')) targets.push(baselineTarget(fake.baseURL, basePids));
  const agentEnv = { OPENAI_BASE_URL: fake.baseURL, OPENAI_MODEL: 'fake-model' };
  if (TARGETS.includes('log')) {
    const agent = await startAgent('agent (log memory)', agentEnv);
    targets.push(agentTarget('agent, log memory', agent.url, { ...basePids, agent: agent.handle.child.pid }));
  }
  if (TARGETS.includes('redis')) {
    redisServer = await startRedis();
    const agent = await startAgent('agent (redis memory)', {
      ...agentEnv,
      REDIS_URL: redisServer.url,
      REDIS_KEY_PREFIX: `bench-${process.pid}`,
    });
    const pids: Pids = { ...basePids, agent: agent.handle.child.pid, redis: await redisPid(redisServer.url) };
    targets.push(agentTarget('agent, redis memory', agent.url, pids));
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
      const open = await openLoop(result.target, WARMUP_SECONDS, SECONDS);
      result.open.push(open);
      const { cpu } = closed;
      const others = CPU_ROLES.reduce((n, role) => n - (cpu[role] ?? 0), cpu.machine ?? Number.NaN);
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
  console.log(
    `\nload average ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')} at end`,
  );

  for (const target of targets) await target.close();
  for (const child of [...children]) {
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
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${Math.round(budgetMs / 1000)} s; giving up`);
    void cleanup().finally(() => process.exit(2));
  }, budgetMs);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  }
  try {
    await main();
  } catch (error) {
    console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}
