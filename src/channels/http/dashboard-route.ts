import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { ClusterView } from '../../core/cluster/cluster.js';
import type { UsageHistory, UsageSeries } from '../../core/usage-history.js';
import type { JobOutcome } from '../../jobs/job-scheduler.js';
import type { CostSnapshot, LedgerTotals } from '../../providers/budget/ledger.js';
import { formatAmount } from '../../wallet/amount.js';
import type { Wallet } from '../../wallet/create-wallet.js';
import { spentInWindow } from '../../wallet/store/wallet-store.js';
import { SPENDING_STATUSES } from '../../wallet/transfer-intent.js';
import type { ChannelHealth } from '../channel-adapter.js';

const DAY_MS = 86_400_000;
/** Chain and Redis reads are slower than the page polls: their answers are reused this long. */
const SLOW_READ_CACHE_MS = 10_000;

type Unavailable = { unavailable: string };

/** What `/api/status` returns; the dashboard is built from the same object. */
export interface StatusSource {
  agentName: string;
  version: string;
  uptimeSeconds: number;
  memoryBackend: string;
  redisOutage?: string;
  providers: readonly {
    id: string;
    model: string;
    kind?: string;
    state?: string;
    breaker?: string;
    cooldownUntil?: number;
    disabled?: string;
    latencyMs?: { ewma?: number; p50?: number; p95?: number };
    lastHour?: { requests: number; errors: number };
    lastError?: { at: number; failure: string; message: string };
  }[];
  costs: CostSnapshot | Unavailable;
  channels: Record<string, ChannelHealth & { state?: string }>;
  cluster?: ClusterView | { nodes: string; leases: string };
  redis?: {
    reachable: boolean;
    unreachableSince?: number;
    writeAheadPending: number;
    writeAheadReplayed: number;
  };
  jobs: JobOutcome[] | Unavailable;
  incidents?: unknown;
}

export interface DashboardDeps {
  /** The `/api/status` object (shared, not recomputed here). */
  status: () => Promise<StatusSource>;
  usage: UsageHistory;
  /** For the primary's address and the replication state. */
  redis?: Redis;
  wallet?: Wallet;
  now?: () => number;
}

/** `GET /api/dashboard`: the status page's data, in the authenticated API scope. */
export function registerDashboardRoute(api: FastifyInstance, deps: DashboardDeps): void {
  const build = dashboardBuilder(deps);
  api.get('/api/dashboard', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send(await build()),
  );
}

export function dashboardBuilder(deps: DashboardDeps): () => Promise<Record<string, unknown>> {
  const now = deps.now ?? Date.now;
  const replication = cached(async () => (deps.redis ? readReplication(deps.redis) : undefined));
  const balances = cached(async () =>
    deps.wallet
      ? (await deps.wallet.service.balances()).map((b) => ({
          token: b.token.symbol,
          amount: formatAmount(b.units, b.token.decimals),
        }))
      : [],
  );
  return async () => {
    const at = now();
    const [status, usage] = await Promise.all([deps.status(), deps.usage.series()]);
    const redisState = status.redis;
    return {
      generatedAt: at,
      agent: {
        name: status.agentName,
        version: status.version,
        uptimeSeconds: Math.round(status.uptimeSeconds),
        memoryBackend: status.memoryBackend,
        ...(status.redisOutage ? { redisOutage: status.redisOutage } : {}),
      },
      providers: providerRows(status, at),
      budgets:
        'budgets' in status.costs
          ? status.costs.budgets.filter((b) => b.scope === 'global')
          : { unavailable: status.costs.unavailable },
      channels: Object.entries(status.channels).map(([name, h]) => ({
        name,
        connected: h.connected,
        ...(h.role ? { role: h.role } : {}),
        ...(h.state ? { state: h.state } : {}),
        ...(h.lastEventAt !== undefined ? { lastEventAt: h.lastEventAt } : {}),
        ...(h.lastSendAt !== undefined ? { lastSendAt: h.lastSendAt } : {}),
        failures: h.consecutiveSendFailures,
        ...(h.lastError ? { lastError: h.lastError } : {}),
      })),
      nodes: status.cluster && 'node' in status.cluster ? nodeRows(status.cluster, at) : [],
      redis: deps.redis
        ? {
            configured: true,
            reachable: redisState?.reachable ?? deps.redis.status === 'ready',
            ...(redisState?.unreachableSince !== undefined
              ? { unreachableSince: redisState.unreachableSince }
              : {}),
            primary: primaryAddress(deps.redis),
            writeAheadPending: redisState?.writeAheadPending ?? 0,
            writeAheadReplayed: redisState?.writeAheadReplayed ?? 0,
            replication:
              redisState?.reachable === false
                ? 'unknown'
                : ((await replication().catch(() => undefined)) ?? 'unknown'),
          }
        : { configured: false },
      jobs: Array.isArray(status.jobs)
        ? status.jobs.map((job) => {
            const everyMs = job.everyMs;
            return {
              ...job,
              ...(everyMs !== undefined ? { everyMs } : {}),
              ...(everyMs !== undefined && job.lastRunAt !== undefined
                ? { nextRunAt: job.lastRunAt + everyMs }
                : {}),
            };
          })
        : status.jobs,
      ...(deps.wallet ? { wallet: await walletSection(deps.wallet, balances, at) } : {}),
      incidents: status.incidents ?? [],
      usage: compactUsage(usage),
    };
  };
}

function providerRows(status: StatusSource, at: number) {
  const costs = 'budgets' in status.costs ? status.costs : undefined;
  return status.providers.map((p) => {
    const totals: LedgerTotals | undefined = costs?.providers[p.id];
    const budget = (period: 'day' | 'month') =>
      costs?.budgets.find((b) => b.scope === 'provider' && b.subject === p.id && b.period === period);
    const day = budget('day');
    const month = budget('month');
    return {
      id: p.id,
      model: p.model,
      ...(p.kind ? { kind: p.kind } : {}),
      breaker: p.breaker ?? 'none',
      health: providerHealth(p, at),
      ...(p.cooldownUntil && p.cooldownUntil > at ? { cooldownUntil: p.cooldownUntil } : {}),
      ...(p.disabled ? { disabled: p.disabled } : {}),
      latencyMs: { p50: p.latencyMs?.p50 ?? null, p95: p.latencyMs?.p95 ?? null },
      lastHour: p.lastHour ?? null,
      ...(p.lastError ? { lastError: p.lastError } : {}),
      cost: costs
        ? {
            dayUsd: totals?.dayUsd ?? 0,
            monthUsd: totals?.monthUsd ?? 0,
            ...(day ? { dayLimitUsd: day.limitUsd } : {}),
            ...(month ? { monthLimitUsd: month.limitUsd } : {}),
          }
        : null,
    };
  });
}

/** One word the page colours by: healthy, open, half-open, cooldown, disabled, or the fallback's state. */
function providerHealth(p: StatusSource['providers'][number], at: number): string {
  if (p.disabled) return 'disabled';
  if (p.breaker === undefined) return p.state === 'in use' ? 'healthy' : (p.state ?? 'unknown');
  if (p.breaker === 'closed') return p.cooldownUntil && p.cooldownUntil > at ? 'cooldown' : 'healthy';
  return p.breaker;
}

function nodeRows(view: ClusterView, at: number) {
  return view.nodes.map((n) => {
    const leases = view.leases
      .filter((l) => l.holder?.node === n.node)
      .map((l) => l.name.replace(/^channel:/, ''));
    return {
      id: n.node,
      self: n.self,
      up: n.up,
      ...(n.stopped ? { stopped: true } : {}),
      role: leases.length > 0 ? 'active' : 'standby',
      leases,
      heartbeatAgeMs: Math.max(0, at - n.lastSeenAt),
      version: n.version,
      ...(n.mesh ? { mesh: n.mesh } : {}),
    };
  });
}

function primaryAddress(redis: Redis): string {
  const stream = (redis as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
  if (redis.status === 'ready' && stream?.remoteAddress && stream.remotePort)
    return `${stream.remoteAddress}:${stream.remotePort}`;
  const { host, port, sentinels } = redis.options;
  if (sentinels && sentinels.length > 0) return 'unknown';
  return host && port ? `${host}:${port}` : 'unknown';
}

async function readReplication(redis: Redis): Promise<{ role: string; connectedReplicas: number }> {
  const info = await withTimeout(redis.info('replication'), 1000);
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  return { role: field('role') ?? 'unknown', connectedReplicas: Number(field('connected_slaves') ?? 0) };
}

async function walletSection(
  wallet: Wallet,
  balances: () => Promise<{ token: string; amount: string }[]>,
  at: number,
) {
  const service = wallet.service;
  const [held, pending, spending] = await Promise.all([
    orUnavailable(balances()),
    orUnavailable(service.pending()),
    orUnavailable(wallet.store.withStatus(SPENDING_STATUSES)),
  ]);
  return {
    address: service.address,
    balances: held,
    pending: Array.isArray(pending)
      ? pending.map((i) => ({
          id: i.id,
          token: i.token,
          amount: formatAmount(BigInt(i.amount), i.decimals),
          recipient: i.recipient,
          createdAt: i.createdAt,
          ...(i.approvalExpiresAt !== undefined ? { approvalExpiresAt: i.approvalExpiresAt } : {}),
        }))
      : pending,
    spent24h: Array.isArray(spending)
      ? service.policy.tokenList().map((token) => {
          const [all, autonomous] = spentInWindow(spending, token.symbol, at - DAY_MS, SPENDING_STATUSES);
          return {
            token: token.symbol,
            spent: formatAmount(all, token.decimals),
            autonomousSpent: formatAmount(autonomous, token.decimals),
            ...(token.limits
              ? {
                  perDay: formatAmount(token.limits.perDay, token.decimals),
                  autonomousPerDay: formatAmount(token.limits.autonomousPerDay, token.decimals),
                }
              : {}),
          };
        })
      : spending,
  };
}

/** The chart's data: only providers with something in the window, costs rounded to micro-dollars. */
function compactUsage(series: UsageSeries) {
  const providers: UsageSeries['providers'] = {};
  for (const [id, line] of Object.entries(series.providers)) {
    if (!line.requests.some((v) => v > 0) && !line.costUsd.some((v) => v > 0)) continue;
    providers[id] = { ...line, costUsd: line.costUsd.map((v) => Math.round(v * 1e6) / 1e6) };
  }
  return { ...series, providers };
}

async function orUnavailable<T>(read: Promise<T>): Promise<T | Unavailable> {
  try {
    return await read;
  } catch (error) {
    return { unavailable: (error as Error).message };
  }
}

/** Reuses a read's answer (or failure) for a while; one read at a time. */
function cached<T>(read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const at = Date.now();
    if (!last || at - last.at > SLOW_READ_CACHE_MS) last = { at, value: read() };
    return last.value;
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
