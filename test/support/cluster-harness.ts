/**
 * Two agent nodes as separate processes on one Redis, with fake Telegram, Discord, Slack (Socket
 * Mode) and an echoing OpenAI, and traffic on every channel. Used by the chaos tests and by
 * `npm run bench:failover`. Every message is counted: sent, answered, lost, duplicated.
 *
 * Each node runs in its own network namespace where the machine allows (`netns.ts`): the mesh is
 * the bridge between them, and `cutMesh()` blackholes their routes to each other. On the loopback
 * fallback the "mesh" is a TCP proxy per node (the address each advertises to the other), which
 * `cutMesh()` breaks. Either way both nodes still reach Redis and the platforms.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type FakeDiscord, startFakeDiscord } from '../fakes/fake-discord.js';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { eventCallback, type FakeSlack, messageEvent, startFakeSlack } from '../fakes/fake-slack.js';
import { type FakeTelegram, startFakeTelegram } from '../fakes/fake-telegram.js';
import { type AgentProcess, startAgentProcess } from './agent-process.js';
import { freePort } from './free-port.js';
import { LOOPBACK, type NodeNetwork } from './netns.js';

export type Platform = 'telegram' | 'discord' | 'slack' | 'http';
export const PLATFORMS: readonly Platform[] = ['telegram', 'discord', 'slack', 'http'];
export type ExclusivePlatform = Exclude<Platform, 'http'>;
export const EXCLUSIVE: readonly ExclusivePlatform[] = ['telegram', 'discord', 'slack'];

export interface RedisTarget {
  /** Environment for the nodes: REDIS_URL, or REDIS_SENTINELS and REDIS_MASTER_NAME. */
  env: Record<string, string>;
  /** A client for the harness's own reads (lease holders). */
  client(): Redis;
}

export interface ClusterHarnessOptions {
  redis: RedisTarget;
  leaseTtlMs?: number;
  /** Delay of every LLM answer. Default 0. */
  llmDelayMs?: number;
  /** One message per platform every this many ms. Default 150. */
  trafficEveryMs?: number;
  keyPrefix?: string;
  /** Where the nodes run; Redis must listen on its `hostAddress`. Default: loopback. */
  network?: NodeNetwork;
}

/** Every node's API token: a node listening off loopback must require one. */
export const NODE_TOKEN = 'chaos-test-token-0123456789';
const AUTH = { authorization: `Bearer ${NODE_TOKEN}` };

export interface ClusterNode {
  readonly id: string;
  readonly url: string;
  process: AgentProcess | undefined;
  start(): Promise<void>;
  /** Sends the signal and resolves when the process has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Output lines of its current (or last) process. */
  output(): string[];
}

export interface PlatformCount {
  sent: number;
  answered: number;
  lost: number;
  duplicated: number;
}

interface Sent {
  platform: Platform;
  text: string;
  at: number;
  /** Discord only: the message id, to ask the fake whether a live session was given it. */
  discordId?: string;
}

const USERS = 3;

export class ClusterHarness {
  readonly nodes: ClusterNode[] = [];
  private readonly sent: Sent[] = [];
  /** First time each reply text was seen, and how many times. */
  private readonly replies = new Map<string, { at: number; count: number; times: number[] }>();
  private trafficTimer: NodeJS.Timeout | undefined;
  private observeTimer: NodeJS.Timeout | undefined;
  private readonly seenLengths = { telegram: 0, discord: 0, slack: 0 };
  private readonly httpInFlight = new Set<Promise<void>>();
  private counter = 0;
  private meshCut = false;
  private readonly meshSockets = new Set<Socket>();

  private constructor(
    readonly llm: FakeOpenAi,
    readonly telegram: FakeTelegram,
    readonly discord: FakeDiscord,
    readonly slack: FakeSlack,
    private readonly options: Required<Omit<ClusterHarnessOptions, 'redis'>> & { redis: RedisTarget },
    private readonly dir: string,
    private readonly meshServers: Server[],
  ) {}

  static async start(options: ClusterHarnessOptions): Promise<ClusterHarness> {
    const settings = {
      leaseTtlMs: 2000,
      llmDelayMs: 0,
      trafficEveryMs: 150,
      keyPrefix: 'agent',
      network: LOOPBACK,
      ...options,
    };
    const { network } = settings;
    const host = network.hostAddress;
    const llm = await startFakeOpenAi({ delayMs: settings.llmDelayMs, record: false, host });
    const telegram = await startFakeTelegram({ host });
    const discord = await startFakeDiscord({ host });
    const slack = await startFakeSlack({ host });
    const dir = mkdtempSync(join(tmpdir(), 'agent-cluster-'));
    const configPath = join(dir, 'agent.config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        channels: {
          telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 },
          discord: { botToken: discord.token, apiRoot: discord.apiRoot },
          slack: { mode: 'socket', botToken: slack.botToken, appToken: slack.appToken, apiUrl: slack.apiUrl },
          outbox: { retryBaseMs: 100, retryMaxMs: 1000 },
        },
      }),
    );
    const meshServers: Server[] = [];
    const harness = new ClusterHarness(llm, telegram, discord, slack, settings, dir, meshServers);
    for (const id of ['a', 'b']) {
      const port = await freePort();
      const namespace = network.namespace(id);
      let advertise = `http://${network.address(id)}:${port}`;
      if (namespace === undefined) {
        const meshPort = await freePort();
        meshServers.push(await harness.meshProxy(meshPort, port));
        advertise = `http://127.0.0.1:${meshPort}`;
      }
      harness.nodes.push(
        harness.makeNode(id, port, namespace, {
          AGENT_CONFIG: configPath,
          DATA_DIR: join(dir, id),
          OPENAI_BASE_URL: llm.baseURL,
          OPENAI_API_KEY: 'sk-test-cluster',
          OPENAI_MODEL: 'fake-model',
          NODE_ID: id,
          CLUSTER_LEASE_TTL_MS: String(settings.leaseTtlMs),
          CLUSTER_ADVERTISE_URL: advertise,
          HTTP_HOST: network.address(id),
          HTTP_AUTH_TOKENS: NODE_TOKEN,
          REDIS_KEY_PREFIX: settings.keyPrefix,
          LOG_LEVEL: process.env.DEBUG_LOG ?? 'warn',
          ...settings.redis.env,
        }),
      );
    }
    return harness;
  }

  node(id: string): ClusterNode {
    const found = this.nodes.find((n) => n.id === id);
    if (!found) throw new Error(`no node ${id}`);
    return found;
  }

  /** The other of the two nodes. */
  other(id: string): ClusterNode {
    const found = this.nodes.find((n) => n.id !== id);
    if (!found) throw new Error(`no node besides ${id}`);
    return found;
  }

  /** A GET on a node's API (with its token), parsed as JSON. */
  async api<T>(node: ClusterNode, path: string): Promise<T> {
    const response = await fetch(`${node.url}${path}`, { headers: AUTH });
    return (await response.json()) as T;
  }

  private makeNode(
    id: string,
    port: number,
    namespace: string | undefined,
    env: Record<string, string>,
  ): ClusterNode {
    let lastOutput: string[] = [];
    const address = this.options.network.address(id);
    const node: ClusterNode = {
      id,
      url: `http://${address}:${port}`,
      process: undefined,
      async start() {
        node.process = await startAgentProcess(
          { ...env, HTTP_PORT: String(port) },
          30_000,
          namespace ? { name: namespace, host: address } : undefined,
        );
        lastOutput = node.process.output;
      },
      async kill(signal) {
        const running = node.process;
        if (!running) return;
        node.process = undefined;
        running.child.kill(signal);
        await running.exited;
      },
      output: () => lastOutput,
    };
    return node;
  }

  /** A new client of the nodes' Redis, for a test's own reads; the caller disconnects it. */
  redisClient(): Redis {
    return this.options.redis.client();
  }

  /** Which node holds each platform's connection, from the lease records in Redis. */
  async holders(): Promise<Record<ExclusivePlatform, string | undefined>> {
    const client = this.options.redis.client();
    try {
      const result = {} as Record<ExclusivePlatform, string | undefined>;
      for (const platform of EXCLUSIVE) {
        const value = await client.get(`${this.options.keyPrefix}:lease:channel:${platform}`);
        result[platform] = value ? (JSON.parse(value) as { node: string }).node : undefined;
      }
      return result;
    } finally {
      client.disconnect();
    }
  }

  /** Waits until one node holds all three connections and each platform is connected to it. */
  async settled(timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const holders = await this.holders();
      const owners = new Set(Object.values(holders));
      const [owner] = [...owners];
      if (
        owners.size === 1 &&
        owner !== undefined &&
        this.slack.sockets === 1 &&
        this.discord.connections === 1
      )
        return owner;
      if (Date.now() > deadline)
        throw new Error(
          `connections did not settle: ${JSON.stringify(holders)}, slack ${this.slack.sockets}`,
        );
      await sleep(50);
    }
  }

  /** Starts both nodes, waits for the connections to settle, and lets traffic flow a while. */
  async startBothWithTraffic(warmupMs = 1500): Promise<string> {
    await this.node('a').start();
    await this.node('b').start();
    const owner = await this.settled();
    this.startTraffic();
    await sleep(warmupMs);
    return owner;
  }

  /**
   * How many nodes ever served each platform at once: Telegram polls from two addresses cutting
   * each other off, the most live Discord sessions and Slack sockets. 0, 1, 1 when exclusive.
   */
  exclusivity(): { telegramConflicts: number; discordPeakSessions: number; slackPeakSockets: number } {
    return {
      telegramConflicts: this.telegram.conflicts,
      discordPeakSessions: this.discord.peakSessions,
      slackPeakSockets: this.slack.peakSockets,
    };
  }

  // ------------------------------------------------------------------ traffic

  startTraffic(): void {
    this.observeTimer = setInterval(() => this.observe(), 10);
    this.trafficTimer = setInterval(() => this.sendRound(), this.options.trafficEveryMs);
  }

  /** Stops sending, then waits until every sent message is answered (or `timeoutMs` passes). */
  async stopTraffic(timeoutMs = 45_000): Promise<void> {
    clearInterval(this.trafficTimer);
    await Promise.allSettled([...this.httpInFlight]);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.unanswered().length > 0) await sleep(100);
    // Late duplicates would show up now.
    await sleep(1500);
    this.observe();
    clearInterval(this.observeTimer);
  }

  /**
   * Per platform: sent, answered, lost (never answered), duplicated (answered more than once).
   * Every message counts, Discord's too: one posted while no node had a gateway session is read
   * back over REST by the node that takes the gateway over, so it must be answered as well.
   */
  counts(): Record<Platform, PlatformCount> {
    this.observe();
    const result = {} as Record<Platform, PlatformCount>;
    for (const platform of PLATFORMS) result[platform] = { sent: 0, answered: 0, lost: 0, duplicated: 0 };
    for (const message of this.sent) {
      const count = result[message.platform];
      count.sent += 1;
      const reply = this.replies.get(message.text);
      if (!reply) count.lost += 1;
      else {
        count.answered += 1;
        if (reply.count > 1) count.duplicated += reply.count - 1;
      }
    }
    return result;
  }

  /** Discord messages posted while no node had a live gateway session: Discord gives them to nobody. */
  undeliveredByDiscord(): number {
    return this.sent.filter(
      (m) => m.discordId !== undefined && !this.discord.deliveredMessages.has(m.discordId),
    ).length;
  }

  /**
   * Per platform, ms from `faultAt` to the first reply to a message sent after it: how long the
   * platform went unserved. Undefined where no such reply came.
   */
  recoveryMs(faultAt: number): Record<Platform, number | undefined> {
    this.observe();
    const result = {} as Record<Platform, number | undefined>;
    for (const platform of PLATFORMS) {
      const firstReply = this.sent
        .filter((m) => m.platform === platform && m.at >= faultAt)
        .map((m) => this.replies.get(m.text)?.at)
        .filter((at): at is number => at !== undefined)
        .sort((x, y) => x - y)[0];
      result[platform] = firstReply === undefined ? undefined : firstReply - faultAt;
    }
    return result;
  }

  /** Per platform: messages sent in [from, to) and answered before `to`. */
  answeredWithin(from: number, to: number): Record<Platform, { sent: number; answered: number }> {
    this.observe();
    const result = {} as Record<Platform, { sent: number; answered: number }>;
    for (const platform of PLATFORMS) result[platform] = { sent: 0, answered: 0 };
    for (const message of this.sent) {
      if (message.at < from || message.at >= to) continue;
      const count = result[message.platform];
      count.sent += 1;
      const reply = this.replies.get(message.text);
      if (reply && reply.at < to) count.answered += 1;
    }
    return result;
  }

  /** The text of every message sent, per platform. */
  sentTexts(platform: Platform): string[] {
    return this.sent.filter((m) => m.platform === platform).map((m) => m.text);
  }

  /**
   * Per platform, the replies the running nodes sent again because a crash had cut off an earlier
   * delivery (their `resent` outcome): the only replies that may legitimately arrive twice.
   */
  async resent(): Promise<Record<Platform, number>> {
    const result = { telegram: 0, discord: 0, slack: 0, http: 0 };
    for (const node of this.nodes) {
      if (!node.process) continue;
      const text = await (await fetch(`${node.url}/metrics`, { headers: AUTH })).text();
      for (const match of text.matchAll(
        /^agent_reply_deliveries_total\{channel="(\w+)",outcome="resent"\} (\d+)/gm,
      )) {
        const platform = match[1] as Platform;
        if (platform in result) result[platform] += Number(match[2]);
      }
    }
    return result;
  }

  /** The messages answered more than once, with the times each copy was seen. */
  duplicates(): { text: string; times: number[] }[] {
    this.observe();
    return [...this.replies.entries()]
      .filter(([, r]) => r.count > 1)
      .map(([text, r]) => ({ text, times: r.times }));
  }

  /** Breaks the link between the nodes (both keep reaching Redis and the platforms). */
  cutMesh(): void {
    this.options.network.cut(true);
    this.meshCut = true;
    for (const socket of this.meshSockets) socket.destroy();
  }

  healMesh(): void {
    this.options.network.cut(false);
    this.meshCut = false;
  }

  async stop(): Promise<void> {
    clearInterval(this.trafficTimer);
    clearInterval(this.observeTimer);
    await Promise.allSettled(this.nodes.map((n) => n.kill('SIGKILL')));
    this.meshCut = true;
    for (const socket of this.meshSockets) socket.destroy();
    await Promise.allSettled(this.meshServers.map((s) => new Promise((r) => s.close(r))));
    await Promise.allSettled([
      this.llm.close(),
      this.telegram.close(),
      this.discord.close(),
      this.slack.close(),
    ]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private unanswered(): Sent[] {
    this.observe();
    return this.sent.filter((m) => !this.replies.has(m.text));
  }

  private sendRound(): void {
    const n = this.counter++;
    const user = n % USERS;
    const at = Date.now();
    const text = (platform: Platform) => `${platform}-${n}`;

    this.telegram.pushText(1000 + user, 1000 + user, text('telegram'));
    this.sent.push({ platform: 'telegram', text: text('telegram'), at });

    const discordUser = String(2000 + user);
    const discordId = this.discord.sendMessageCreate({
      channelId: this.discord.dmChannelFor(discordUser),
      authorId: discordUser,
      content: text('discord'),
    });
    this.sent.push({ platform: 'discord', text: text('discord'), at, discordId });

    this.slack.publishEvent(
      eventCallback({
        event: messageEvent({ user: `U300${user}`, text: text('slack'), channel: `D300${user}` }),
      }),
      { ackTimeoutMs: 2000 },
    );
    this.sent.push({ platform: 'slack', text: text('slack'), at });

    this.sent.push({ platform: 'http', text: text('http'), at });
    const request = this.sendHttp(`http-user-${user}`, text('http'), n);
    this.httpInFlight.add(request);
    void request.finally(() => this.httpInFlight.delete(request));
  }

  /** As a client behind a load balancer: tries the nodes in turn, same event id, until one answers. */
  private async sendHttp(conversation: string, text: string, n: number): Promise<void> {
    // Long enough to outlast a Redis outage in a chaos test.
    const deadline = Date.now() + 90_000;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const node = this.nodes[(n + attempt) % this.nodes.length] as ClusterNode;
      try {
        const response = await fetch(`${node.url}/api/conversations/${conversation}/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...AUTH },
          body: JSON.stringify({ text, eventId: `evt-${text}` }),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await response.json()) as { reply?: { text: string } };
        if (response.status === 200 && body.reply?.text) {
          this.reply(body.reply.text);
          return;
        }
      } catch {
        // That node is down: the next one.
      }
      await sleep(100);
    }
  }

  private observe(): void {
    const { telegram, discord, slack } = this;
    for (; this.seenLengths.telegram < telegram.sent.length; this.seenLengths.telegram++)
      this.reply(telegram.sent[this.seenLengths.telegram]?.text ?? '');
    for (; this.seenLengths.discord < discord.sent.length; this.seenLengths.discord++)
      this.reply(discord.sent[this.seenLengths.discord]?.content ?? '');
    for (; this.seenLengths.slack < slack.posted.length; this.seenLengths.slack++)
      this.reply(slack.posted[this.seenLengths.slack]?.text ?? '');
  }

  private reply(text: string): void {
    const key = text.replace(/^echo: /, '');
    const seen = this.replies.get(key);
    if (seen) {
      seen.count += 1;
      seen.times.push(Date.now());
    } else this.replies.set(key, { at: Date.now(), count: 1, times: [Date.now()] });
  }

  private meshProxy(listenPort: number, targetPort: number): Promise<Server> {
    const server = createServer((socket) => {
      if (this.meshCut) {
        socket.destroy();
        return;
      }
      const upstream = tcpConnect(targetPort, '127.0.0.1');
      for (const s of [socket, upstream]) {
        this.meshSockets.add(s);
        s.on('close', () => this.meshSockets.delete(s));
        s.on('error', () => {
          socket.destroy();
          upstream.destroy();
        });
      }
      socket.pipe(upstream).pipe(socket);
    });
    return new Promise((resolve) => server.listen(listenPort, '127.0.0.1', () => resolve(server)));
  }
}

/** A RedisTarget for a plain redis-server URL. */
export function redisUrlTarget(url: string): RedisTarget {
  return {
    env: { REDIS_URL: url },
    client: () => new Redis(url, { maxRetriesPerRequest: 1 }),
  };
}
