/**
 * Chat-platform benchmark: messages through the fake Telegram, Discord and Slack into the real
 * agent and back, per durable-queue backend, plus the time a reply takes to fail over to the
 * person's linked platform when its own platform goes down.
 *
 *   npm run bench:channels
 *
 * For each backend (the local append-only log, and BullMQ on a private redis-server), the agent
 * runs with Telegram (long polling), Discord (gateway + REST) and Slack (Events API over HTTP: this
 * process plays Slack and posts signed `message` im events to the agent's /slack/events).
 *
 * Measurements:
 *   - closed loop, per platform: BENCH_CONCURRENCY conversations (distinct users and chats), each
 *     sending its next message once the reply to the previous one reached the fake platform, for
 *     BENCH_SECONDS after BENCH_WARMUP_SECONDS of warm-up, BENCH_RUNS runs (platforms interleaved,
 *     after one unmeasured second of load on each platform for JIT warm-up and first contacts);
 *     messages/s counts replies that arrived in the measured window, and latency runs from the
 *     moment the platform event was pushed (Telegram update queued, Discord MESSAGE_CREATE
 *     dispatched, Slack event POST started) to the moment the reply was stored by the fake;
 *     every reply is checked to be the expected echo, and missing, duplicate and unexpected
 *     replies are counted (any of them makes the exit code 1);
 *   - failover: a Telegram user linked (with /link) to a Discord DM; the provider is made slow
 *     once (slow_first_token BENCH_SLOW_LLM_MS), a Telegram message is pushed and Telegram is
 *     taken down as soon as the request reaches the provider; measured from down() to the first
 *     reply delivered on Discord, with `channels.outbox.failoverAfterMs` = BENCH_FAILOVER_AFTER_MS.
 *     Telegram then comes back, the agent reconnects, and one Telegram round trip checks that
 *     Telegram is used again; BENCH_RUNS times.
 *
 * Processes: this one is the load generator (and Slack's side of the Events API). The fake
 * provider and the three fake platforms run in one child process (this file with --fakes), which
 * stamps each pushed event and each stored reply with the machine's monotonic clock
 * (process.hrtime, CLOCK_MONOTONIC, comparable across processes) and reports replies over IPC the
 * moment a fake stores them (it observes the fakes' `sent`/`posted` arrays; the fakes are not
 * changed), so no reply is found by polling. The agent runs as the built dist/main.js
 * (startAgentProcess) with LOG_LEVEL=warn, all three platforms configured.
 *
 * Environment knobs: BENCH_RUNS (3), BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (1),
 * BENCH_CONCURRENCY (16), BENCH_BACKENDS (log,redis), BENCH_PLATFORMS (telegram,discord,slack),
 * BENCH_FAILOVER_AFTER_MS (2000), BENCH_SLOW_LLM_MS (300), BENCH_AGENT_NODE_OPTIONS (NODE_OPTIONS for the
 * agent; Node refuses --cpu-prof there, so profile with an --import=preload.mjs that drives
 * node:inspector's Profiler).
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Agent, request } from 'undici';
import { startFakeDiscord } from '../test/fakes/fake-discord.js';
import { startFakeOpenAi } from '../test/fakes/fake-openai.js';
import { eventCallback, messageEvent, slackSignature, startFakeSlack } from '../test/fakes/fake-slack.js';
import { startFakeTelegram } from '../test/fakes/fake-telegram.js';
import { startAgentProcess } from '../test/support/agent-process.js';
import { startRedis, type TestRedis } from '../test/support/redis-server.js';
import { type CpuSample, cpuPercent, otherProcessesCpu, redisPid, sampleCpu } from './support/cpu.js';
import { intEnv, keepAliveAgent } from './support/load.js';
import {
  adopt,
  agentDir,
  type Child,
  exitWithParent,
  runBench,
  spawnNode,
  stopAtCleanup,
  stopChild,
  stopNow,
  untilReady,
} from './support/processes.js';
import { int, loadAverage, machineLine, ms, pct, table } from './support/report.js';
import { median, percentile } from './support/stats.js';

const RUNS = intEnv('BENCH_RUNS', 3);
const SECONDS = intEnv('BENCH_SECONDS', 5);
const WARMUP_SECONDS = intEnv('BENCH_WARMUP_SECONDS', 1);
const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 16);
const FAILOVER_AFTER_MS = intEnv('BENCH_FAILOVER_AFTER_MS', 2000);
const SLOW_LLM_MS = intEnv('BENCH_SLOW_LLM_MS', 300);
const BACKENDS = listEnv('BENCH_BACKENDS', ['log', 'redis'], ['log', 'redis']) as Backend[];
const PLATFORMS = listEnv(
  'BENCH_PLATFORMS',
  ['telegram', 'discord', 'slack'],
  ['telegram', 'discord', 'slack'],
) as Platform[];
/** A message whose reply has not arrived after this long is counted missing. */
const REPLY_TIMEOUT_MS = 15_000;
/** Unmeasured load on each platform before its first run, so JIT warm-up and first contacts are in no run. */
const PRIME_SECONDS = 1;
/** After each measurement, how long late and duplicate replies are waited for. */
const SETTLE_MS = 300;
const SIGNING_SECRET = 'bench-signing-secret-0123456789abcdef';
const AGENT_NODE_OPTIONS = process.env.BENCH_AGENT_NODE_OPTIONS ?? '';

type Backend = 'log' | 'redis';
type Platform = 'telegram' | 'discord' | 'slack';

function listEnv(name: string, fallback: string[], allowed: string[]): string[] {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((s) => !allowed.includes(s));
  if (bad.length > 0 || list.length === 0)
    throw new Error(`${name} must list some of ${allowed.join(', ')}; got "${value}"`);
  return list;
}

/** Milliseconds on CLOCK_MONOTONIC: the same clock in every process of the machine. */
function clock(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Who is who: conversation `c` of a platform is one user in one direct chat.

/** The conversation of the person whose Telegram account is linked to a Discord DM. */
const FAILOVER_CONV = 1000;
const TELEGRAM_CHAT_BASE = 5_000_000;
const telegramChat = (conv: number) => TELEGRAM_CHAT_BASE + conv;
const discordUser = (conv: number) => String(800_000_000_000_000 + conv);
const slackUser = (conv: number) => `UBENCH${conv}`;
const slackChannel = (conv: number) => `DBENCH${conv}`;

// ---------------------------------------------------------------------------------------------
// IPC between this process and the fakes.

type PushablePlatform = Exclude<Platform, 'slack'>;

type FakesOp =
  | { op: 'push'; platform: PushablePlatform; conv: number; text: string }
  /** Slow provider once, push on Telegram, take Telegram down when the request reaches the provider. */
  | { op: 'failover'; conv: number; text: string; slowMs: number }
  | { op: 'telegram-up' };
type ToFakes = FakesOp & { id: number };

interface FakesInfo {
  llmBaseURL: string;
  telegram: { url: string; token: string };
  discord: { apiRoot: string; token: string };
  slack: { apiUrl: string; botToken: string };
}

type FromFakes =
  | ({ type: 'ready' } & FakesInfo)
  | { type: 'ack'; id: number; result: Record<string, number> }
  | { type: 'nack'; id: number; error: string }
  /** A message the bot sent, as the fake stored it; `at` on the monotonic clock. */
  | { type: 'reply'; platform: Platform; conv: number; text: string; at: number };

/** Calls `onItem` for each item pushed onto `list` (the fakes store what the bot sends with push). */
function observePush<T>(list: T[], onItem: (item: T) => void): void {
  const push = list.push.bind(list);
  list.push = (...items: T[]) => {
    const length = push(...items);
    for (const item of items) onItem(item);
    return length;
  };
}

async function runFakesChild(): Promise<void> {
  const llm = await startFakeOpenAi({ record: false });
  const telegram = await startFakeTelegram();
  const discord = await startFakeDiscord();
  const slack = await startFakeSlack();
  const send = (message: FromFakes) => process.send?.(message);
  const discordConv = new Map<string, number>();

  observePush(telegram.sent, (m) =>
    send({
      type: 'reply',
      platform: 'telegram',
      conv: m.chatId - TELEGRAM_CHAT_BASE,
      text: m.text,
      at: clock(),
    }),
  );
  observePush(discord.sent, (m) =>
    send({
      type: 'reply',
      platform: 'discord',
      conv: discordConv.get(m.channelId) ?? -1,
      text: m.content,
      at: clock(),
    }),
  );
  observePush(slack.posted, (m) =>
    send({
      type: 'reply',
      platform: 'slack',
      conv: Number(/^DBENCH(\d+)$/.exec(m.channel)?.[1] ?? -1),
      text: m.text,
      at: clock(),
    }),
  );

  const push = (platform: PushablePlatform, conv: number, text: string): number => {
    if (platform === 'telegram') {
      const at = clock();
      telegram.pushText(telegramChat(conv), telegramChat(conv), text);
      return at;
    }
    const channelId = discord.dmChannelFor(discordUser(conv));
    discordConv.set(channelId, conv);
    const at = clock();
    discord.sendMessageCreate({ channelId, authorId: discordUser(conv), content: text });
    return at;
  };

  const handle = async (message: ToFakes): Promise<Record<string, number>> => {
    switch (message.op) {
      case 'push':
        return { at: push(message.platform, message.conv, message.text) };
      case 'failover': {
        llm.setFault({ kind: 'slow_first_token', delayMs: message.slowMs, times: 1 });
        const before = llm.chatHits;
        const pushedAt = push('telegram', message.conv, message.text);
        const deadline = clock() + 10_000;
        while (llm.chatHits === before) {
          if (clock() > deadline) {
            llm.setFault(undefined);
            throw new Error('the Telegram message did not reach the provider within 10 s');
          }
          await sleep(1);
        }
        const downAt = clock();
        const downEpochMs = Date.now();
        await telegram.down();
        return { pushedAt, downAt, downEpochMs, downDoneAt: clock() };
      }
      case 'telegram-up': {
        const at = clock();
        await telegram.up();
        return { at };
      }
    }
  };

  process.on('message', (message: ToFakes) => {
    handle(message).then(
      (result) => send({ type: 'ack', id: message.id, result }),
      (error: unknown) =>
        send({ type: 'nack', id: message.id, error: String((error as Error).message ?? error) }),
    );
  });
  exitWithParent(() => Promise.allSettled([llm.close(), telegram.close(), discord.close(), slack.close()]));
  send({
    type: 'ready',
    llmBaseURL: llm.baseURL,
    telegram: { url: telegram.url, token: telegram.token },
    discord: { apiRoot: discord.apiRoot, token: discord.token },
    slack: { apiUrl: slack.apiUrl, botToken: slack.botToken },
  });
}

// ---------------------------------------------------------------------------------------------
// Processes.

/** A reply the bench waits for. */
interface Expectation {
  match: (text: string) => boolean;
  resolve: (reply: { text: string; at: number } | undefined) => void;
}

/** Replies the bench did not wait for, per platform. */
interface Tally {
  /** The same expected reply a second time. */
  duplicates: number;
  /** A reply to a message already counted missing. */
  late: number;
  /** Anything else. */
  unexpected: number;
  samples: string[];
}

const newTally = (): Tally => ({ duplicates: 0, late: 0, unexpected: 0, samples: [] });

/** The fakes' child process, and the replies it reports. */
class Fakes {
  private nextId = 1;
  private readonly calls = new Map<
    number,
    { resolve: (r: Record<string, number>) => void; reject: (e: Error) => void }
  >();
  private readonly expectations = new Map<string, Expectation[]>();
  /** Replies matched so far, by platform, conversation and text: a second one is a duplicate. */
  private readonly answered = new Set<string>();
  /** Expected replies given up on: arriving later, they are late rather than unexpected. */
  private readonly givenUp = new Set<string>();
  readonly tallies = new Map<string, Tally>();

  private constructor(
    readonly handle: Child,
    readonly info: FakesInfo,
  ) {
    handle.child.on('message', (message: FromFakes) => this.onMessage(message));
  }

  static async start(): Promise<Fakes> {
    const handle = spawnNode('fakes', [...process.execArgv, import.meta.filename, '--fakes'], {
      PATH: process.env.PATH ?? '',
    });
    const info = await untilReady(
      handle,
      15_000,
      (m): m is FakesInfo & { type: 'ready' } => (m as FromFakes | undefined)?.type === 'ready',
    );
    return new Fakes(handle, info);
  }

  call(message: FakesOp): Promise<Record<string, number>> {
    const id = this.nextId++;
    return new Promise<Record<string, number>>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.handle.child.send({ ...message, id });
    });
  }

  /** Pushes a user's message on Telegram or Discord; resolves with when the fake queued it. */
  async push(platform: PushablePlatform, conv: number, text: string): Promise<number> {
    return (await this.call({ op: 'push', platform, conv, text })).at as number;
  }

  /**
   * Waits for the next reply in a conversation that `match`es (registered before the message is
   * pushed, so it cannot be missed). `cancel` gives up on it without counting it missing.
   */
  expect(
    platform: Platform,
    conv: number,
    match: (text: string) => boolean,
    timeoutMs = REPLY_TIMEOUT_MS,
    expectedText?: string,
  ): { reply: Promise<{ text: string; at: number } | undefined>; cancel: () => void } {
    const key = `${platform}:${conv}`;
    let cancel = () => {};
    const reply = new Promise<{ text: string; at: number } | undefined>((resolve) => {
      const timer = setTimeout(() => {
        remove();
        if (expectedText !== undefined) this.givenUp.add(`${key}:${expectedText}`);
        resolve(undefined);
      }, timeoutMs);
      const expectation: Expectation = {
        match,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const remove = () => {
        const list = this.expectations.get(key) ?? [];
        const index = list.indexOf(expectation);
        if (index >= 0) list.splice(index, 1);
        if (list.length === 0) this.expectations.delete(key);
      };
      cancel = () => {
        clearTimeout(timer);
        remove();
        resolve(undefined);
      };
      const list = this.expectations.get(key) ?? [];
      list.push(expectation);
      this.expectations.set(key, list);
    });
    return { reply, cancel };
  }

  /** Which tally a stray reply goes to: the failover person's, or the platform's. */
  tally(name: string): Tally {
    let tally = this.tallies.get(name);
    if (tally === undefined) {
      tally = newTally();
      this.tallies.set(name, tally);
    }
    return tally;
  }

  private onMessage(message: FromFakes): void {
    if (message.type === 'ack' || message.type === 'nack') {
      const call = this.calls.get(message.id);
      this.calls.delete(message.id);
      if (message.type === 'ack') call?.resolve(message.result);
      else call?.reject(new Error(message.error));
      return;
    }
    if (message.type !== 'reply') return;
    const key = `${message.platform}:${message.conv}`;
    const list = this.expectations.get(key);
    const index = list?.findIndex((e) => e.match(message.text)) ?? -1;
    const answerKey = `${key}:${message.text}`;
    if (list !== undefined && index >= 0) {
      const [expectation] = list.splice(index, 1);
      if (list.length === 0) this.expectations.delete(key);
      this.answered.add(answerKey);
      expectation?.resolve({ text: message.text, at: message.at });
      return;
    }
    const tally = this.tally(message.conv === FAILOVER_CONV ? 'failover' : message.platform);
    if (this.answered.has(answerKey)) tally.duplicates += 1;
    else if (this.givenUp.delete(answerKey)) {
      tally.late += 1;
      this.answered.add(answerKey);
    } else tally.unexpected += 1;
    if (tally.samples.length < 5)
      tally.samples.push(`${message.platform} conversation ${message.conv}: ${JSON.stringify(message.text)}`);
  }
}

/** The built agent (dist/main.js) as its own process, with the three platforms configured. */
async function startAgent(
  backend: Backend,
  fakes: Fakes,
  redis: TestRedis | undefined,
): Promise<{ handle: Child; url: string }> {
  const { telegram, discord, slack } = fakes.info;
  const { configPath, dataDir } = agentDir(os.tmpdir(), 'channels-bench-', {
    // The limiter stays in the path of the HTTP API; platform webhooks do not go through it.
    http: { rateLimit: { max: 1_000_000_000, windowMs: 60_000 } },
    channels: {
      telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 },
      discord: { botToken: discord.token, apiRoot: discord.apiRoot },
      slack: {
        botToken: slack.botToken,
        signingSecret: SIGNING_SECRET,
        apiUrl: slack.apiUrl,
        mode: 'http',
      },
      outbox: { failoverAfterMs: FAILOVER_AFTER_MS },
    },
  });
  const agent = await startAgentProcess(
    {
      AGENT_CONFIG: configPath,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...(AGENT_NODE_OPTIONS ? { NODE_OPTIONS: AGENT_NODE_OPTIONS } : {}),
      OPENAI_BASE_URL: fakes.info.llmBaseURL,
      OPENAI_API_KEY: 'sk-bench-channels',
      OPENAI_MODEL: 'fake-model',
      ...(redis ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `channels-bench-${process.pid}` } : {}),
    },
    20_000,
  );
  return { handle: adopt(`agent (${backend})`, agent), url: agent.url };
}

interface ChannelState {
  connected: boolean;
  state?: string;
  lastError?: string;
  /** Epoch ms (the agent's wall clock). */
  connectedSince?: number;
}

interface AgentStatus {
  channels: Record<string, ChannelState>;
  /** Jobs not finished in the durable inbox and outbox. */
  outbox?: { inbox: number; outbox: number };
}

async function agentStatus(agentUrl: string): Promise<AgentStatus> {
  const { statusCode, body } = await request(`${agentUrl}/api/status`);
  if (statusCode !== 200) throw new Error(`GET /api/status answered ${statusCode}: ${await body.text()}`);
  const status = (await body.json()) as Partial<AgentStatus>;
  return { channels: status.channels ?? {}, ...(status.outbox ? { outbox: status.outbox } : {}) };
}

const describeChannel = (state: ChannelState | undefined) =>
  state === undefined
    ? 'absent'
    : state.connected
      ? 'connected'
      : `disconnected${state.lastError ? ` (${state.lastError.slice(0, 80)})` : ''}`;

/**
 * Polls /api/status until every named channel is connected (since `sinceEpochMs`, if given);
 * resolves with the monotonic time it was seen.
 */
async function untilConnected(
  agentUrl: string,
  names: string[],
  sinceEpochMs = 0,
  timeoutMs = 30_000,
): Promise<number> {
  const deadline = clock() + timeoutMs;
  for (;;) {
    const { channels } = await agentStatus(agentUrl);
    const ok = (n: string) =>
      channels[n]?.connected === true &&
      (channels[n]?.connectedSince ?? Number.POSITIVE_INFINITY) > sinceEpochMs;
    if (names.every(ok)) return clock();
    if (clock() > deadline)
      throw new Error(
        `channels not connected after ${timeoutMs} ms: ${names.map((n) => `${n} ${describeChannel(channels[n])}`).join(', ')}`,
      );
    await sleep(10);
  }
}

// ---------------------------------------------------------------------------------------------
// Load.

interface Context {
  backend: Backend;
  fakes: Fakes;
  agentUrl: string;
  pids: Pids;
  /** For Slack's signed event POSTs. */
  dispatcher: Agent;
  /** Per platform and conversation: the next message number (unique for the whole backend). */
  seqs: Map<string, number>;
  slackEvents: number;
}

interface RunResult {
  perSecond: number;
  latencies: number[];
  sent: number;
  missing: number;
  /** Slack only: event POSTs the agent did not answer 200. */
  refused: number;
  firstError?: string;
  cpu: CpuSample<CpuRole>;
}

function messageText(platform: Platform, conv: number, seq: number): string {
  return `hello ${seq} from ${platform} conversation ${conv}: how is it going today?`;
}

/** Sends one message as the platform would; resolves with the push time, or undefined if refused. */
async function pushMessage(
  ctx: Context,
  platform: Platform,
  conv: number,
  text: string,
  result: RunResult,
): Promise<number | undefined> {
  if (platform !== 'slack') return ctx.fakes.push(platform, conv, text);
  ctx.slackEvents += 1;
  const body = JSON.stringify(
    eventCallback({
      event: messageEvent({ user: slackUser(conv), text, channel: slackChannel(conv), channelType: 'im' }),
      eventId: `EvBENCH${ctx.slackEvents}`,
    }),
  );
  const timestamp = Math.floor(Date.now() / 1000);
  const at = clock();
  try {
    const response = await request(`${ctx.agentUrl}/slack/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': slackSignature(SIGNING_SECRET, timestamp, body),
      },
      body,
      dispatcher: ctx.dispatcher,
    });
    const answer = await response.body.text();
    if (response.statusCode === 200) return at;
    result.firstError ??= `Slack event answered ${response.statusCode}: ${answer.slice(0, 200)}`;
  } catch (error) {
    result.firstError ??= `Slack event POST failed: ${(error as Error).message}`;
  }
  result.refused += 1;
  return undefined;
}

/** Every conversation sends its next message when the reply to the previous one arrived. */
async function closedLoop(
  ctx: Context,
  platform: Platform,
  warmupS = WARMUP_SECONDS,
  measureS = SECONDS,
): Promise<RunResult> {
  const measureFrom = clock() + warmupS * 1000;
  const measureTo = measureFrom + measureS * 1000;
  const result: RunResult = {
    perSecond: 0,
    latencies: [],
    sent: 0,
    missing: 0,
    refused: 0,
    cpu: {},
  };
  let completed = 0;
  let cpuBefore: CpuSample<CpuRole> = {};
  let cpuAfter: CpuSample<CpuRole> = {};
  const startSampler = setTimeout(() => {
    cpuBefore = sampleCpu(ctx.pids);
  }, measureFrom - clock());
  const endSampler = setTimeout(() => {
    cpuAfter = sampleCpu(ctx.pids);
  }, measureTo - clock());

  const worker = async (conv: number) => {
    const seqKey = `${platform}:${conv}`;
    while (clock() < measureTo) {
      const seq = ctx.seqs.get(seqKey) ?? 0;
      ctx.seqs.set(seqKey, seq + 1);
      const text = messageText(platform, conv, seq);
      const expected = `echo: ${text}`;
      const wait = ctx.fakes.expect(platform, conv, (t) => t === expected, REPLY_TIMEOUT_MS, expected);
      result.sent += 1;
      const pushedAt = await pushMessage(ctx, platform, conv, text, result).catch((error: unknown) => {
        result.firstError ??= `push failed: ${(error as Error).message}`;
        return undefined;
      });
      if (pushedAt === undefined) {
        wait.cancel();
        await sleep(10);
        continue;
      }
      const reply = await wait.reply;
      if (reply === undefined) {
        result.missing += 1;
        result.firstError ??= `no reply within ${REPLY_TIMEOUT_MS} ms to ${JSON.stringify(text)}`;
        continue;
      }
      if (reply.at >= measureFrom && reply.at < measureTo) {
        completed += 1;
        result.latencies.push(reply.at - pushedAt);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => worker(i)));
  clearTimeout(startSampler);
  clearTimeout(endSampler);
  result.perSecond = completed / measureS;
  result.cpu = cpuPercent(cpuBefore, cpuAfter, measureS * 1000);
  result.latencies.sort((a, b) => a - b);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Failover.

interface FailoverRun {
  /** From Telegram's down() to the reply stored by the fake Discord. */
  failoverMs: number;
  /** How much of that the slow provider still had to go when Telegram went down. */
  llmAfterDownMs: number;
  /** The reply on Discord is the expected one (with the line saying why). */
  textOk: boolean;
  /** What /api/status said about Telegram just before it came back. */
  stateWhileDown: string;
  /** From up() to /api/status showing Telegram connected. */
  reconnectMs: number;
  /** A Telegram message's round trip once reconnected. */
  backOnTelegramMs: number | undefined;
}

interface FailoverResult {
  runs: FailoverRun[];
  error?: string;
}

const FAILOVER_PREFIX = '(Telegram is unreachable right now, so this reply comes here.)';

async function failoverPhase(ctx: Context): Promise<FailoverResult> {
  const { fakes } = ctx;
  const result: FailoverResult = { runs: [] };
  // Link: /link on Telegram gives a code, `/link CODE` on Discord joins that account to the person.
  const codeWait = fakes.expect('telegram', FAILOVER_CONV, (t) => /link code is [A-Z2-9]{8}/.test(t));
  await fakes.push('telegram', FAILOVER_CONV, '/link');
  const codeReply = await codeWait.reply;
  const code = codeReply && /link code is ([A-Z2-9]{8})/.exec(codeReply.text)?.[1];
  if (!code) return { ...result, error: 'no link code on Telegram' };
  const linkWait = fakes.expect('discord', FAILOVER_CONV, (t) => t.includes('Linked'));
  await fakes.push('discord', FAILOVER_CONV, `/link ${code}`);
  if ((await linkWait.reply) === undefined) return { ...result, error: 'no link confirmation on Discord' };

  for (let run = 1; run <= RUNS; run += 1) {
    const text = `failover ${run}: are you still there?`;
    const expected = `${FAILOVER_PREFIX}\necho: ${text}`;
    const onDiscord = fakes.expect(
      'discord',
      FAILOVER_CONV,
      (t) => t.includes(`echo: ${text}`),
      FAILOVER_AFTER_MS + 30_000,
      expected,
    );
    let down: Record<string, number>;
    try {
      down = await fakes.call({ op: 'failover', conv: FAILOVER_CONV, text, slowMs: SLOW_LLM_MS });
    } catch (error) {
      onDiscord.cancel();
      return { ...result, error: `run ${run}: ${(error as Error).message}` };
    }
    const downAt = down.downAt as number;
    const downEpochMs = down.downEpochMs as number;
    const reply = await onDiscord.reply;
    const stateWhileDown = describeChannel((await agentStatus(ctx.agentUrl)).channels.telegram);
    const up = await fakes.call({ op: 'telegram-up' });
    if (reply === undefined)
      return { ...result, error: `run ${run}: no reply on Discord within the timeout` };
    let reconnectedAt: number;
    try {
      reconnectedAt = await untilConnected(ctx.agentUrl, ['telegram'], downEpochMs);
    } catch (error) {
      return { ...result, error: `run ${run}: ${(error as Error).message}` };
    }
    const back = `back on Telegram ${run}`;
    const backWait = fakes.expect('telegram', FAILOVER_CONV, (t) => t === `echo: ${back}`);
    const backPushedAt = await fakes.push('telegram', FAILOVER_CONV, back);
    const backReply = await backWait.reply;
    const entry: FailoverRun = {
      failoverMs: reply.at - downAt,
      llmAfterDownMs: Math.max(0, SLOW_LLM_MS - (downAt - (down.pushedAt as number))),
      textOk: reply.text === expected,
      stateWhileDown,
      reconnectMs: reconnectedAt - (up.at as number),
      backOnTelegramMs: backReply === undefined ? undefined : backReply.at - backPushedAt,
    };
    result.runs.push(entry);
    console.log(
      `  [${ctx.backend}] failover ${run}/${RUNS}: reply on Discord ${ms(entry.failoverMs)} ms after Telegram went down` +
        ` (failoverAfterMs ${FAILOVER_AFTER_MS}, excess ${ms(entry.failoverMs - FAILOVER_AFTER_MS)} ms)` +
        `; Telegram while down: ${stateWhileDown}; reconnected ${ms(entry.reconnectMs)} ms after up()` +
        `; round trip on Telegram again ${entry.backOnTelegramMs === undefined ? 'MISSING' : `${ms(entry.backOnTelegramMs)} ms`}` +
        (entry.textOk ? '' : `; unexpected text ${JSON.stringify(reply.text)}`),
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting (support/cpu.ts).

interface Pids {
  loadGenerator: number;
  fakes?: number;
  agent?: number;
  redis?: number;
}

type CpuRole = keyof Pids;

// ---------------------------------------------------------------------------------------------
// Report.

interface BackendResults {
  backend: Backend;
  runs: Map<Platform, RunResult[]>;
  /** The unmeasured priming load of each platform (its errors still count). */
  primes: Map<Platform, RunResult>;
  tallies: Map<string, Tally>;
  failover: FailoverResult;
  /** Agent log lines at warn and above, counted by message. */
  agentLog: Map<string, { count: number; firstError?: string }>;
  /** Unfinished inbox and outbox jobs at the end (both should be 0). */
  pending?: { inbox: number; outbox: number };
  error?: string;
}

function errorsOf(runs: RunResult[], tally: Tally | undefined): { count: number; detail: string } {
  const missing = runs.reduce((n, r) => n + r.missing, 0);
  const refused = runs.reduce((n, r) => n + r.refused, 0);
  const parts: [string, number][] = [
    ['missing', missing],
    ['refused', refused],
    ['duplicate', tally?.duplicates ?? 0],
    ['late', tally?.late ?? 0],
    ['unexpected', tally?.unexpected ?? 0],
  ];
  const count = parts.reduce((n, [, v]) => n + v, 0);
  const detail = parts
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  return { count, detail: count === 0 ? '0' : `${count} (${detail})` };
}

function report(results: BackendResults[]): { text: string; failed: boolean } {
  let failed = false;
  const rows: string[][] = [];
  for (const r of results) {
    for (const platform of PLATFORMS) {
      const runs = r.runs.get(platform) ?? [];
      const all = runs.flatMap((x) => x.latencies).sort((a, b) => a - b);
      const prime = r.primes.get(platform);
      const errors = errorsOf(prime ? [prime, ...runs] : runs, r.tallies.get(platform));
      if (errors.count > 0 || runs.length < RUNS) failed = true;
      rows.push([
        r.backend,
        platform,
        int(median(runs.map((x) => x.perSecond))),
        runs.map((x) => int(x.perSecond)).join(' / '),
        int(runs.reduce((n, x) => n + x.sent, 0)),
        ms(percentile(all, 0.5)),
        ms(percentile(all, 0.99)),
        ms(all.at(-1) ?? Number.NaN),
        pct(median(runs.map((x) => x.cpu.agent ?? Number.NaN).filter(Number.isFinite))),
        runs.length < RUNS ? `${errors.detail}; ${RUNS - runs.length} runs not done` : errors.detail,
      ]);
    }
  }
  const throughput = table(
    [
      'backend',
      'platform',
      'msg/s (median)',
      `all ${RUNS} runs`,
      'messages',
      'p50 ms',
      'p99 ms',
      'max ms',
      'agent CPU',
      'errors',
    ],
    rows,
    2,
  );
  const failoverRows = results.map((r) => {
    const runs = r.failover.runs;
    const times = runs.map((x) => x.failoverMs);
    const tally = r.tallies.get('failover');
    const wrongText = runs.filter((x) => !x.textOk).length;
    const backMissing = runs.filter((x) => x.backOnTelegramMs === undefined).length;
    const strays = (tally?.duplicates ?? 0) + (tally?.late ?? 0) + (tally?.unexpected ?? 0);
    const problems = [
      r.failover.error,
      runs.length < RUNS ? `${RUNS - runs.length} runs not done` : undefined,
      wrongText > 0 ? `${wrongText} with unexpected text` : undefined,
      backMissing > 0 ? `${backMissing} Telegram round trips missing after reconnect` : undefined,
      strays > 0 ? `${strays} stray replies` : undefined,
    ].filter((p): p is string => p !== undefined);
    if (problems.length > 0) failed = true;
    return [
      r.backend,
      'telegram -> discord',
      times.map(ms).join(' / ') || '-',
      ms(median(times)),
      ms(median(times) - FAILOVER_AFTER_MS),
      ms(median(runs.map((x) => x.llmAfterDownMs))),
      ms(median(runs.map((x) => x.reconnectMs))),
      ms(median(runs.map((x) => x.backOnTelegramMs ?? Number.NaN).filter(Number.isFinite))),
      problems.length === 0 ? '0' : problems.join('; '),
    ];
  });
  const failover = table(
    [
      'backend',
      'failover',
      'each run ms',
      'median ms',
      'excess ms',
      'of it slow LLM ms',
      'reconnect ms',
      'TG round trip ms',
      'errors',
    ],
    failoverRows,
    2,
  );
  const lines = [
    '',
    `Summary: ${CONCURRENCY} concurrent conversations per platform (closed loop), ${SECONDS} s measured after ` +
      `${WARMUP_SECONDS} s warm-up, ${RUNS} runs; latency from platform event to reply stored by the fake, ` +
      `p50/p99/max over every measured message of all runs ("messages": all sent, warm-up included); agent CPU in percent of one core (median of runs)`,
    throughput,
    '',
    `Failover: channels.outbox.failoverAfterMs = ${FAILOVER_AFTER_MS} ms, provider slowed to ${SLOW_LLM_MS} ms once, ` +
      `Telegram down as soon as the request reached the provider; time from down() to the reply on Discord ` +
      `(medians over ${RUNS} runs; "excess" = median - failoverAfterMs, "of it slow LLM" = how long the provider ` +
      `still took after down(), which the outbox cannot start failing before)`,
    failover,
  ];
  for (const r of results) {
    if (r.error) lines.push(`  [${r.backend}] stopped early: ${r.error}`);
    if (r.pending === undefined) lines.push(`  [${r.backend}] the agent did not report its queues`);
    else if (r.pending.inbox > 0 || r.pending.outbox > 0) {
      failed = true;
      lines.push(
        `  [${r.backend}] left unfinished: ${r.pending.inbox} inbox and ${r.pending.outbox} outbox jobs`,
      );
    } else lines.push(`  [${r.backend}] durable inbox and outbox empty at the end`);
    for (const platform of PLATFORMS) {
      const first = (r.runs.get(platform) ?? []).find((x) => x.firstError)?.firstError;
      if (first) lines.push(`  [${r.backend}] first error on ${platform}: ${first}`);
    }
    for (const [name, tally] of r.tallies)
      for (const sample of tally.samples) lines.push(`  [${r.backend}] stray ${name} reply: ${sample}`);
  }
  return { text: lines.join('\n'), failed };
}

/** Agent log lines at warn (40) and above, by level and message: how many, and the first one's error. */
function countLog(lines: readonly string[]): Map<string, { count: number; firstError?: string }> {
  const counts = new Map<string, { count: number; firstError?: string }>();
  for (const line of lines) {
    let key: string;
    let error: string | undefined;
    try {
      const record = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
      if ((record.level ?? 0) < 40) continue;
      key = `${record.level === 40 ? 'warn' : record.level === 50 ? 'error' : `level ${record.level}`}: ${record.msg}`;
      const err = record.err as { message?: unknown } | string | undefined;
      if (err !== undefined)
        error = typeof err === 'string' ? err : String(err.message ?? JSON.stringify(err));
    } catch {
      key = `(not JSON) ${line.slice(0, 160)}`;
    }
    const entry = counts.get(key) ?? { count: 0 };
    entry.count += 1;
    if (entry.firstError === undefined && error !== undefined) entry.firstError = error.slice(0, 240);
    counts.set(key, entry);
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Main.

async function benchBackend(backend: Backend): Promise<BackendResults> {
  const results: BackendResults = {
    backend,
    runs: new Map(),
    primes: new Map(),
    tallies: new Map(),
    failover: { runs: [] },
    agentLog: new Map(),
  };
  const fakes = await Fakes.start();
  results.tallies = fakes.tallies;
  let redis: TestRedis | undefined;
  if (backend === 'redis') {
    redis = stopAtCleanup(await startRedis());
  }
  const agent = await startAgent(backend, fakes, redis);
  const dispatcher = keepAliveAgent(CONCURRENCY * 2);
  try {
    const startedAt = clock();
    await untilConnected(agent.url, ['telegram', 'discord', 'slack']);
    console.log(
      `[${backend}] agent up, Telegram, Discord and Slack connected ${ms(clock() - startedAt)} ms after ready`,
    );
    const pids: Pids = { loadGenerator: process.pid };
    if (fakes.handle.child.pid !== undefined) pids.fakes = fakes.handle.child.pid;
    if (agent.handle.child.pid !== undefined) pids.agent = agent.handle.child.pid;
    if (redis) {
      const pid = await redisPid(redis.url);
      if (pid !== undefined) pids.redis = pid;
    }
    const ctx: Context = {
      backend,
      fakes,
      agentUrl: agent.url,
      pids,
      dispatcher,
      seqs: new Map(),
      slackEvents: 0,
    };

    // Unmeasured: the agent's JIT warm-up and every conversation's first contact (a new person).
    for (const platform of PLATFORMS) {
      const prime = await closedLoop(ctx, platform, 0, PRIME_SECONDS);
      results.primes.set(platform, prime);
      console.log(
        `  [${backend}] primed ${platform} (${PRIME_SECONDS} s unmeasured, ${int(prime.perSecond)} msg/s)` +
          (prime.missing + prime.refused > 0 ? `  missing ${prime.missing} refused ${prime.refused}` : ''),
      );
    }
    await sleep(SETTLE_MS);
    // Runs interleave the platforms, so a noisy moment on the machine hits all of them alike.
    for (let run = 1; run <= RUNS; run += 1) {
      for (const platform of PLATFORMS) {
        const result = await closedLoop(ctx, platform);
        await sleep(SETTLE_MS);
        const list = results.runs.get(platform) ?? [];
        list.push(result);
        results.runs.set(platform, list);
        const { cpu } = result;
        const others = otherProcessesCpu(cpu);
        const lat = result.latencies;
        const problems = result.missing + result.refused;
        console.log(
          `  [${backend}] run ${run}/${RUNS} ${platform.padEnd(8)} ${int(result.perSecond).padStart(6)} msg/s` +
            `  p50 ${ms(percentile(lat, 0.5))} p99 ${ms(percentile(lat, 0.99))} max ${ms(lat.at(-1) ?? Number.NaN)} ms` +
            `  CPU: agent ${pct(cpu.agent)} fakes ${pct(cpu.fakes)} load gen ${pct(cpu.loadGenerator)}` +
            (cpu.redis === undefined ? '' : ` redis ${pct(cpu.redis)}`) +
            (Number.isFinite(others) ? ` other processes ${pct(Math.max(0, others))}` : '') +
            (problems > 0 ? `  missing ${result.missing} refused ${result.refused}` : ''),
        );
      }
    }

    results.failover = await failoverPhase(ctx);
    await sleep(Math.max(SETTLE_MS, 1000));
    results.pending = (await agentStatus(agent.url)).outbox;
  } catch (error) {
    results.error = (error as Error).stack ?? String(error);
  } finally {
    await dispatcher.close();
    await stopChild(agent.handle);
    results.agentLog = countLog(agent.handle.output);
    await stopChild(fakes.handle);
    if (fakes.handle.output.length > 0)
      console.log(`  [${backend}] the fakes printed:\n    ${fakes.handle.output.slice(-10).join('\n    ')}`);
    if (redis) await stopNow(redis);
  }
  return results;
}

async function main(): Promise<void> {
  console.log(machineLine('Channels bench'));
  console.log(
    `backends ${BACKENDS.join(', ')}; platforms ${PLATFORMS.join(', ')}; ${CONCURRENCY} conversations each; ` +
      `${RUNS} runs of ${WARMUP_SECONDS} s warm-up + ${SECONDS} s; failoverAfterMs ${FAILOVER_AFTER_MS} ms, ` +
      `slow LLM ${SLOW_LLM_MS} ms`,
  );
  console.log(
    'processes: load generator and Slack event sender (this), fake LLM + Telegram + Discord + Slack (one child), ' +
      'agent (dist/main.js), redis-server (redis backend)',
  );

  const results: BackendResults[] = [];
  for (const backend of BACKENDS) {
    console.log(
      `\n[${backend}] ${backend === 'log' ? 'embedded: local append-only log queues' : 'BullMQ queues on a private redis-server'}`,
    );
    results.push(await benchBackend(backend));
  }
  const { text, failed } = report(results);
  console.log(text);
  for (const r of results) {
    if (r.agentLog.size === 0) continue;
    console.log(`\n[${r.backend}] agent warnings and errors (count: message):`);
    for (const [message, { count, firstError }] of [...r.agentLog]
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, 12))
      console.log(
        `  ${String(count).padStart(5)}: ${message}${firstError ? `  (first: ${firstError})` : ''}`,
      );
  }
  console.log(`\nload average ${loadAverage()} at end`);
  if (failed || results.some((r) => r.error)) {
    console.log('RESULT: FAILED (errors above)');
    process.exitCode = 1;
  } else console.log('RESULT: OK, every message answered exactly once with the expected reply');
}

if (process.argv.includes('--fakes')) {
  await runFakesChild();
} else {
  // Everything is bounded: a stuck run ends the bench (and its children) instead of hanging.
  const perBackendS =
    60 +
    PLATFORMS.length * (PRIME_SECONDS + REPLY_TIMEOUT_MS / 1000 + 2) +
    RUNS * PLATFORMS.length * (WARMUP_SECONDS + SECONDS + REPLY_TIMEOUT_MS / 1000 + 2) +
    RUNS * (FAILOVER_AFTER_MS / 1000 + 80);
  const budgetMs = (30 + BACKENDS.length * perBackendS) * 1000;
  await runBench(main, budgetMs);
}
