import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BudgetConfig } from './budget-config.js';
import type { Reservation, ReserveInput, SettleInput } from './cost-guard.js';
import {
  buildSnapshot,
  type CostGuardCommonOptions,
  type CostSnapshot,
  type CounterRow,
  cappedCounters,
  capReached,
  checkActual,
  checkEstimate,
  DEFAULT_RESERVATION_TTL_MS,
  dayBucket,
  GLOBAL_SUBJECT,
  type LedgerCounter,
  type LedgerDimension,
  ledgerCounters,
  type MeteredCostGuard,
  monthBucket,
  notify,
  type Period,
  periodEndMs,
  thresholdEvents,
} from './ledger.js';

/*
 * DESIGN
 *
 * One Redis hash per ledger counter and period bucket (see ledger.ts):
 *   <prefix>:cost:<bucket>:h:<g|p|u|c>:<subject>   bucket = YYYY-MM-DD or YYYY-MM (UTC)
 *     spent, reserved         integer micro-dollars (never floats)
 *     in, out, req            tokens and requests settled
 *     r:<reservationId>       the amount that reservation holds on this counter
 *     warned, exhausted       set once when a threshold is passed (HSETNX: once per cluster)
 * and beside it a sorted set of that counter's live reservations, scored by their deadline:
 *   <prefix>:cost:<bucket>:z:<g|p|u|c>:<subject>   member reservationId, score deadline (ms)
 * plus one index set per bucket naming the counters that have settled spend, for the snapshot:
 *   <prefix>:cost:<bucket>:idx                     members <g|p|u|c>:<subject>
 * Every key expires `graceMs` after its period ends.
 *
 * RESERVE checks every capped counter and adds the estimate to all of them in one script, so no
 * two nodes can both take the last of a budget. LEAKED RESERVATIONS: a process that dies between
 * reserve and settle never releases. Each reservation therefore carries a deadline, and every
 * script first REAPS the counters it touches: it takes the reservations whose deadline has passed
 * out of the sorted set and subtracts their amounts (from the `r:<id>` fields) from `reserved`.
 * A dead process's budget is thus free again at the first operation after its deadline, with no
 * sweeper process, and each script touches only the keys it is given (a hash tag in the key
 * prefix, e.g. `agent{1}`, keeps them in one Redis Cluster slot). The deadline must exceed the
 * longest call: a reservation reaped while its call still runs stops holding budget.
 *
 * Periods and reservation deadlines come from the callers' clocks (injectable for tests), so the
 * nodes' clocks must agree to well within the reservation TTL; key expiries are sent as relative
 * TTLs, so a client clock that is off does not expire keys early. A call is charged to the day
 * and month it was RESERVED in, where its estimate was held.
 *
 * SETTLE is not idempotent: a settle retried after a lost reply is counted twice (errs high).
 * Errors from Redis (down, timeout) propagate from `reserve`: the gateway decides whether to fail
 * closed or open.
 */

/** Shared by every script: frees the expired reservations of one counter. */
const REAP = `
local function reap(h, z, now)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #expired == 0 then return end
  local total = 0
  for _, id in ipairs(expired) do
    local field = 'r:' .. id
    total = total + tonumber(redis.call('HGET', h, field) or '0')
    redis.call('HDEL', h, field)
  end
  if total ~= 0 then redis.call('HINCRBY', h, 'reserved', -total) end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
end
`;

/**
 * KEYS: for each capped counter i = 1..n, in check order:
 *         KEYS[2i-1] its hash, KEYS[2i] its reservation sorted set
 * ARGV: [1] reservation id, [2] estimate (micro-USD), [3] now (ms), [4] reservation deadline (ms),
 *       then for each counter i: ARGV[3+2i] its cap (micro-USD), ARGV[4+2i] its keys' TTL (ms)
 * Returns 0 when the estimate is now reserved on every counter, or i, the first counter where
 * spent + reserved + estimate would pass the cap (and then nothing was changed).
 */
const RESERVE_SCRIPT = `${REAP}
local n = #KEYS / 2
local id, amount, now, deadline = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
for i = 1, n do
  local h = KEYS[2 * i - 1]
  reap(h, KEYS[2 * i], now)
  local v = redis.call('HMGET', h, 'spent', 'reserved')
  if tonumber(v[1] or '0') + tonumber(v[2] or '0') + amount > tonumber(ARGV[3 + 2 * i]) then
    return i
  end
end
for i = 1, n do
  local h, z, ttl = KEYS[2 * i - 1], KEYS[2 * i], ARGV[4 + 2 * i]
  redis.call('HINCRBY', h, 'reserved', ARGV[2])
  redis.call('HSET', h, 'r:' .. id, ARGV[2])
  redis.call('ZADD', z, deadline, id)
  redis.call('PEXPIRE', h, ttl)
  redis.call('PEXPIRE', z, ttl)
end
return 0
`;

/**
 * The call's counters come by DIMENSION (global, provider, person, channel), each with a day and
 * a month counter, so what they share is sent once: the two index sets, the two TTLs, the member.
 * KEYS: [1] the day's index set, [2] the month's index set,
 *       then for each dimension d = 1..D: KEYS[1+2d] its day hash, KEYS[2+2d] its month hash,
 *       then, in the same counter order, the reservation sorted set of every counter that needs
 *       one: all of them while the reservation may be held, else only the capped ones.
 * ARGV: [1] reservation id, [2] actual cost (micro-USD), [3] input tokens, [4] output tokens,
 *       [5] now (ms), [6] the day keys' TTL (ms), [7] the month keys' TTL (ms),
 *       [8] 1 when the reservation may be held on these counters, 0 when it holds nothing,
 *       then for each dimension d: ARGV[4+5d] its member in the index sets,
 *       ARGV[5+5d] and ARGV[6+5d] its day cap and warn-at spend, ARGV[7+5d] and ARGV[8+5d] its
 *       month cap and warn-at spend (micro-USD, -1 when uncapped).
 * Moves the reservation (if still held: it may have been reaped) out of `reserved` and adds the
 * actual cost to `spent`, atomically on every counter. Only counters with a sorted set are reaped:
 * an uncapped counter holds no reservations, and the next reserve or peek reaps any left from
 * a cap removed since.
 * Returns a flat array, for each counter i (day then month, per dimension): [2i-1] the thresholds
 * this settle was the first in the cluster to pass (0 none, +1 the warn-at spend, +2 the cap),
 * [2i] the counter's spend after it.
 */
const SETTLE_SCRIPT = `${REAP}
local dimensions = (#ARGV - 8) / 5
local id, usd, now, held = ARGV[1], ARGV[2], ARGV[5], ARGV[8] == '1'
local passed, nextZset = {}, 2 + 2 * dimensions
for d = 1, dimensions do
  local base = 4 + 5 * d
  for p = 1, 2 do
    local i = 2 * (d - 1) + p
    local h, cap = KEYS[2 * d + p], tonumber(ARGV[base + 2 * p - 1])
    if held or cap >= 0 then
      nextZset = nextZset + 1
      local z = KEYS[nextZset]
      reap(h, z, now)
      if held and redis.call('ZREM', z, id) == 1 then
        local field = 'r:' .. id
        local holds = tonumber(redis.call('HGET', h, field) or '0')
        if holds ~= 0 then redis.call('HINCRBY', h, 'reserved', -holds) end
        redis.call('HDEL', h, field)
      end
    end
    local spent = redis.call('HINCRBY', h, 'spent', usd)
    redis.call('HINCRBY', h, 'in', ARGV[3])
    redis.call('HINCRBY', h, 'out', ARGV[4])
    redis.call('HINCRBY', h, 'req', 1)
    redis.call('PEXPIRE', h, ARGV[5 + p])
    local level = 0
    if cap > 0 then
      if spent >= tonumber(ARGV[base + 2 * p]) and redis.call('HSETNX', h, 'warned', 1) == 1 then
        level = level + 1
      end
      if spent >= cap and redis.call('HSETNX', h, 'exhausted', 1) == 1 then level = level + 2 end
    end
    passed[2 * i - 1] = level
    passed[2 * i] = spent
  end
end
local members = {}
for d = 1, dimensions do members[d] = ARGV[4 + 5 * d] end
for p = 1, 2 do
  redis.call('SADD', KEYS[p], unpack(members))
  redis.call('PEXPIRE', KEYS[p], ARGV[5 + p])
end
return passed
`;

/**
 * KEYS: for each counter i = 1..n: KEYS[2i-1] its hash, KEYS[2i] its reservation sorted set
 * ARGV: [1] reservation id, [2] now (ms)
 * Returns how many counters still held the reservation (0: already settled, released or reaped).
 */
const RELEASE_SCRIPT = `${REAP}
local id, now, released = ARGV[1], ARGV[2], 0
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  reap(h, z, now)
  if redis.call('ZREM', z, id) == 1 then
    local field = 'r:' .. id
    local held = tonumber(redis.call('HGET', h, field) or '0')
    if held ~= 0 then redis.call('HINCRBY', h, 'reserved', -held) end
    redis.call('HDEL', h, field)
    released = released + 1
  end
end
return released
`;

/**
 * KEYS: for each counter i = 1..n: KEYS[2i-1] its hash, KEYS[2i] its reservation sorted set
 * ARGV: [1] now (ms)
 * Reaps, then returns for each counter {spent, reserved, in, out, req} (nil where unset).
 */
const PEEK_SCRIPT = `${REAP}
local values = {}
for i = 1, #KEYS / 2 do
  local h = KEYS[2 * i - 1]
  reap(h, KEYS[2 * i], ARGV[1])
  values[i] = redis.call('HMGET', h, 'spent', 'reserved', 'in', 'out', 'req')
end
return values
`;

type Script = (numberOfKeys: number, ...args: (string | number)[]) => Promise<unknown>;
interface CostCommands {
  agentCostReserve: Script;
  agentCostSettle: Script;
  agentCostRelease: Script;
  agentCostPeek: Script;
}

/** What `readLedger` returns: the counters of the periods holding `readAt`. */
export interface LedgerReading {
  /** The moment they were read (epoch ms, the guard's clock). */
  readAt: number;
  /** `YYYY-MM-DD` and `YYYY-MM` (UTC) of `readAt`. */
  day: string;
  month: string;
  rows: CounterRow[];
}

export interface RedisCostGuardOptions extends CostGuardCommonOptions {
  redis: Redis;
  keyPrefix: string;
  /** How long a period's keys outlive it. Default one day. */
  graceMs?: number;
}

const DIMENSION_CODES: Record<LedgerDimension, string> = {
  global: 'g',
  provider: 'p',
  person: 'u',
  channel: 'c',
};
const DIMENSIONS_BY_CODE = new Map(
  Object.entries(DIMENSION_CODES).map(([dimension, code]) => [code, dimension as LedgerDimension]),
);

/** Members per snapshot script call, so one call never blocks Redis for long. */
const PEEK_BATCH = 250;

/**
 * Shared budgets and ledger: every node pointed at the same Redis and key prefix enforces the
 * same caps together. See DESIGN above for the keys and the scripts.
 */
export class RedisCostGuard implements MeteredCostGuard {
  readonly backend = 'redis' as const;
  private readonly redis: Redis & CostCommands;
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly graceMs: number;
  private readonly budgets: BudgetConfig;

  constructor(private readonly options: RedisCostGuardOptions) {
    const { redis } = options;
    redis.defineCommand('agentCostReserve', { lua: RESERVE_SCRIPT });
    redis.defineCommand('agentCostSettle', { lua: SETTLE_SCRIPT });
    redis.defineCommand('agentCostRelease', { lua: RELEASE_SCRIPT });
    redis.defineCommand('agentCostPeek', { lua: PEEK_SCRIPT });
    this.redis = redis as Redis & CostCommands;
    this.now = options.now ?? Date.now;
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.graceMs = options.graceMs ?? 24 * 3_600_000;
    this.budgets = options.budgets;
  }

  async open(): Promise<void> {}

  /** The Redis connection belongs to the caller. */
  async close(): Promise<void> {}

  async reserve(input: ReserveInput): Promise<Reservation> {
    const amountMicros = checkEstimate(input);
    const now = this.now();
    const id = randomUUID();
    // A free call cannot add to any spend, so no cap refuses it (not even one already passed).
    const capped = amountMicros === 0 ? [] : cappedCounters(this.budgets, input, now);
    if (capped.length === 0) return { id, input, reservedAt: now, holdsNothing: true };
    const keys: string[] = [];
    const args: (string | number)[] = [id, amountMicros, now, now + this.ttlMs];
    for (const counter of capped) {
      keys.push(this.hashKey(counter), this.zsetKey(counter));
      args.push(counter.capMicros, this.keyTtl(counter.period, now, now));
    }
    const refused = Number(await this.redis.agentCostReserve(keys.length, ...keys, ...args));
    if (refused > 0) {
      const counter = capped[refused - 1];
      if (!counter) throw new Error(`cost reserve script returned an unknown counter ${refused}`);
      throw capReached(counter);
    }
    return { id, input, reservedAt: now };
  }

  async settle(reservation: Reservation, actual: SettleInput): Promise<void> {
    const { usdMicros, inputTokens, outputTokens } = checkActual(actual);
    const now = this.now();
    const at = reservation.reservedAt ?? now;
    const counters = ledgerCounters(this.budgets, reservation.input, at);
    const held = reservation.holdsNothing !== true;
    const keys = [this.indexKey(dayBucket(at)), this.indexKey(monthBucket(at))];
    const zsets: string[] = [];
    const args: (string | number)[] = [
      reservation.id,
      usdMicros,
      inputTokens,
      outputTokens,
      now,
      this.keyTtl('day', at, now),
      this.keyTtl('month', at, now),
      held ? 1 : 0,
    ];
    for (const [i, counter] of counters.entries()) {
      // The script takes each dimension's day and month counters as a pair (see its header).
      if (counter.period !== (i % 2 === 0 ? 'day' : 'month')) {
        throw new Error('ledger counters must come as day-then-month pairs per dimension');
      }
      keys.push(this.hashKey(counter));
      if (held || counter.capMicros !== undefined) zsets.push(this.zsetKey(counter));
      if (counter.period === 'day') args.push(member(counter));
      args.push(counter.capMicros ?? -1, counter.warnAtMicros ?? -1);
    }
    keys.push(...zsets);
    const reply = (await this.redis.agentCostSettle(keys.length, ...keys, ...args)) as number[];
    const events = counters.flatMap((counter, i) =>
      thresholdEvents(counter, Number(reply[2 * i] ?? 0), Number(reply[2 * i + 1] ?? 0)),
    );
    notify(this.options.onThreshold, events);
  }

  async release(reservation: Reservation): Promise<void> {
    if (reservation.holdsNothing) return;
    const now = this.now();
    // Every counter of the call, not just today's capped ones: a cap removed since the reserve
    // still frees what it held.
    const counters = ledgerCounters(this.budgets, reservation.input, reservation.reservedAt ?? now);
    const keys = counters.flatMap((counter) => [this.hashKey(counter), this.zsetKey(counter)]);
    await this.redis.agentCostRelease(keys.length, ...keys, reservation.id, now);
  }

  async snapshot(): Promise<CostSnapshot> {
    const { readAt, rows } = await this.readLedger();
    return buildSnapshot(this.budgets, readAt, rows);
  }

  /**
   * The current day's and month's counters as Redis holds them now (expired reservations
   * reaped): global, every capped provider, and every provider, person and channel with settled
   * spend in either period. One missing from it has settled nothing this period (it may hold
   * reservations: only settled spend is indexed). Read-only, apart from the reaping every script does.
   */
  async readLedger(): Promise<LedgerReading> {
    const now = this.now();
    const day = dayBucket(now);
    const month = monthBucket(now);
    const [dayMembers, monthMembers] = await Promise.all([
      this.redis.smembers(this.indexKey(day)),
      this.redis.smembers(this.indexKey(month)),
    ]);
    const members = new Set([...dayMembers, ...monthMembers]);
    members.add(`${DIMENSION_CODES.global}:${GLOBAL_SUBJECT}`);
    for (const providerId of Object.keys(this.budgets.perProvider ?? {})) {
      members.add(`${DIMENSION_CODES.provider}:${providerId}`);
    }
    const counters: Pick<LedgerCounter, 'dimension' | 'subject' | 'period' | 'bucket'>[] = [];
    for (const m of members) {
      const colon = m.indexOf(':');
      const dimension = DIMENSIONS_BY_CODE.get(m.slice(0, colon));
      if (colon < 0 || !dimension) continue;
      const subject = m.slice(colon + 1);
      counters.push({ dimension, subject, period: 'day', bucket: day });
      counters.push({ dimension, subject, period: 'month', bucket: month });
    }
    const rows: CounterRow[] = [];
    for (let start = 0; start < counters.length; start += PEEK_BATCH * 2) {
      const batch = counters.slice(start, start + PEEK_BATCH * 2);
      const keys = batch.flatMap((counter) => [this.hashKey(counter), this.zsetKey(counter)]);
      const values = (await this.redis.agentCostPeek(keys.length, ...keys, now)) as (string | null)[][];
      for (const [i, counter] of batch.entries()) {
        const [spent, reserved, input, output, requests] = values[i] ?? [];
        rows.push({
          dimension: counter.dimension,
          subject: counter.subject,
          period: counter.period,
          values: {
            usdMicros: Number(spent ?? 0),
            reservedMicros: Number(reserved ?? 0),
            inputTokens: Number(input ?? 0),
            outputTokens: Number(output ?? 0),
            requests: Number(requests ?? 0),
          },
        });
      }
    }
    return { readAt: now, day, month, rows };
  }

  private hashKey(counter: Pick<LedgerCounter, 'dimension' | 'subject' | 'bucket'>): string {
    return `${this.options.keyPrefix}:cost:${counter.bucket}:h:${member(counter)}`;
  }

  private zsetKey(counter: Pick<LedgerCounter, 'dimension' | 'subject' | 'bucket'>): string {
    return `${this.options.keyPrefix}:cost:${counter.bucket}:z:${member(counter)}`;
  }

  private indexKey(bucket: string): string {
    return `${this.options.keyPrefix}:cost:${bucket}:idx`;
  }

  /** Until `graceMs` after the end of the period holding `at`, counted from `now`; never under a minute. */
  private keyTtl(period: Period, at: number, now: number): number {
    return Math.max(60_000, periodEndMs(period, at) + this.graceMs - now);
  }
}

function member(counter: Pick<LedgerCounter, 'dimension' | 'subject'>): string {
  return `${DIMENSION_CODES[counter.dimension]}:${counter.subject}`;
}
