import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { RedisReachability } from '../../core/redis/redis-reachability.js';
import type { WalRecord, WriteAheadLog } from '../../core/redis/write-ahead-log.js';
import type { BudgetConfig } from './budget-config.js';
import type { Reservation, ReserveInput, SettleInput } from './cost-guard.js';
import {
  buildSnapshot,
  type CappedCounter,
  type CostSnapshot,
  type CounterRow,
  type CounterValues,
  cappedCounters,
  capReached,
  checkActual,
  checkEstimate,
  DEFAULT_RESERVATION_TTL_MS,
  dayBucket,
  isCapped,
  type LedgerCounter,
  type LedgerDimension,
  ledgerCounters,
  type MeteredCostGuard,
  monthBucket,
  newlyPassed,
  notify,
  type Period,
  type ThresholdEvent,
  thresholdEvents,
} from './ledger.js';
import type { LedgerReading, RedisCostGuard } from './redis-cost-guard.js';

/*
 * DESIGN
 *
 * Every call goes to the RedisCostGuard, except while Redis is unreachable or the write-ahead log
 * still holds writes for it (`wal.engaged`). Then this node decides alone:
 *
 * ALLOWANCE. Per capped counter, the node may spend its share of what was left when it last read
 * Redis: (cap - (spent + reserved)) / nodeShare. The share is taken when the outage begins and
 * kept until it ends: a peer that goes quiet may still be spending its own share, so the others'
 * must not grow. N nodes that each keep within 1/N of the remainder keep within the cap, up to
 * the estimation error of the calls in flight (as with Redis). A capped counter with no value
 * read has no known remainder: it refuses every call that costs anything (fails closed).
 *
 * LAST-KNOWN VALUES come from `refresh()` (on open, when Redis comes back, on the caller's
 * schedule, and after a settle at most once a second) or from `importState` (a snapshot on disk,
 * for a node that starts during an outage). A reading covers the whole current day and month: a
 * counter missing from it had settled nothing then, so it counts as 0 rather than as unknown,
 * and a person's first call of the day is not refused just because Redis is away. (Such a
 * counter may have held reservations, which Redis does not index: those calls can overrun the
 * cap by their estimates, like any call in flight.) A reading of an earlier day or month counts
 * as 0 for the current one, which began after it.
 *
 * SPEND during the outage counts here at once and goes to the WAL (kind `cost.settle`), which
 * replays it into Redis as a settle of the same reservation id: a reservation Redis still holds
 * is swapped for the actual cost, one it no longer holds (made here, or reaped after its
 * deadline) just adds the cost. So the estimate is never counted on top of the cost.
 *
 * END. Once the WAL has drained with Redis reachable, what the outage counted is in Redis: it is
 * added to the last-known values (until the next reading, which holds it anyway) and the outage
 * counters start again from zero, so a second outage soon after cannot hand out the same
 * remainder twice.
 *
 * Where this is approximate it errs towards spending less: a Redis reservation settled during
 * the outage counts its whole cost here though its estimate may be in the last-known `reserved`
 * too, and the outage's spend is added to a reading that may already hold part of it.
 */

/** The WAL record kind of a settle made while Redis was away. */
export const COST_SETTLE_KIND = 'cost.settle';
/** How long the marker of a replayed record lives: far longer than any WAL waits for Redis. */
export const WAL_APPLIED_TTL_MS = 7 * 24 * 3_600_000;
/** Settles refresh the last-known values at most this often. */
const SETTLE_REFRESH_INTERVAL_MS = 1000;

/** The data of one `cost.settle` WAL record. */
export interface CostSettleRecord {
  reservationId: string;
  /** When it was reserved: the cost is charged to that day and month, as `RedisCostGuard.settle` does. */
  reservedAt: number;
  input: ReserveInput;
  actual: SettleInput;
}

/** The last-known ledger values as `exportState` gives them and `importState` takes them (plain JSON). */
export type CostGuardState = LedgerReading;

/** A WAL record or a saved state that is not what this guard wrote. */
export class InvalidCostDataError extends Error {
  readonly code = 'invalid_cost_data';
  constructor(
    what: string,
    readonly issues: string,
  ) {
    super(`${what} is not valid: ${issues}`);
    this.name = 'InvalidCostDataError';
  }
}

export interface ResilientCostGuardOptions {
  inner: RedisCostGuard;
  /** The connection and key prefix `inner` uses: replayed WAL records are marked beside the ledger. */
  redis: Redis;
  keyPrefix: string;
  wal: WriteAheadLog;
  reachability: RedisReachability;
  /** The same budgets as `inner`. */
  budgets: BudgetConfig;
  /**
   * How many nodes share the remaining budget during an outage (>= 1), asked when an outage
   * begins. A value that is not a number >= 1 refuses capped calls until the outage ends.
   */
  nodeShare: () => number;
  logger: Logger;
  /** Epoch ms. Default `Date.now`. */
  now?: () => number;
  /** How long a reservation made during an outage holds budget if never settled. Default 10 minutes. */
  reservationTtlMs?: number;
  /**
   * Called when this node's view of a capped counter (last-known spend plus the outage's) passes a
   * threshold during an outage: once per node and counter. The replay to Redis may report the same
   * threshold again through `inner`'s own callback.
   */
  onThreshold?: (event: ThresholdEvent) => void;
}

/** One counter in one period bucket, as this node counts it. */
interface LocalRow {
  counter: LedgerCounter;
  values: CounterValues;
}

interface Outage {
  /** `nodeShare()` when the outage began. */
  share: number;
  /** Spend settled through the WAL since then, by `keyOf`. */
  spent: Map<string, LocalRow>;
  /** Threshold flags already reported, by `keyOf`. */
  passed: Map<string, number>;
}

/** A ledger reading, its rows by `rowKey`. */
interface Known {
  readAt: number;
  day: string;
  month: string;
  rows: Map<string, CounterRow>;
}

interface HeldReservation {
  amountMicros: number;
  counters: CappedCounter[];
  deadline: number;
}

/**
 * The Redis cost guard, kept answering while Redis is unreachable: budgets are enforced on each
 * node's share of what was left, and the spend is replayed into Redis when it returns. See DESIGN
 * above.
 */
export class ResilientCostGuard implements MeteredCostGuard {
  readonly backend = 'redis' as const;
  private readonly now: () => number;
  private readonly ttlMs: number;
  private known: Known | undefined;
  private outage: Outage | undefined;
  /** Reservations made here during an outage, and what they hold by `keyOf`. */
  private readonly reservations = new Map<string, HeldReservation>();
  private readonly reserved = new Map<string, LocalRow>();
  private refreshing: Promise<void> | undefined;
  private lastRefreshAt = Number.NEGATIVE_INFINITY;
  /** Bumped when an outage's spend is added to `known`: a reading started before may miss it. */
  private folds = 0;

  constructor(private readonly options: ResilientCostGuardOptions) {
    this.now = options.now ?? Date.now;
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    options.wal.handle(COST_SETTLE_KIND, (record) => this.replaySettle(record));
  }

  async open(): Promise<void> {
    this.options.reachability.on('lost', this.onLost);
    this.options.reachability.on('regained', this.onRegained);
    await this.options.inner.open();
    // Starting while Redis is away is allowed: the reading comes when it returns.
    await this.refresh().catch((error: unknown) => this.logRefreshFailure(error));
  }

  async close(): Promise<void> {
    this.options.reachability.off('lost', this.onLost);
    this.options.reachability.off('regained', this.onRegained);
    await this.refreshing?.catch(() => {});
    await this.options.inner.close();
  }

  async reserve(input: ReserveInput): Promise<Reservation> {
    checkEstimate(input);
    this.endOutageIfOver();
    if (!this.options.wal.engaged) {
      // BudgetExceededError and script errors are answers, not absence: they are thrown.
      const reserved = await this.options.reachability.attempt(() => this.options.inner.reserve(input));
      if (reserved.ok) return reserved.value;
    }
    return this.reserveLocally(input);
  }

  async settle(reservation: Reservation, actual: SettleInput): Promise<void> {
    const values = checkActual(actual);
    this.endOutageIfOver();
    if (!this.options.wal.engaged) {
      try {
        // A reservation made here during an outage is not held in Redis: this just adds the cost.
        await this.options.inner.settle(reservation, actual);
        this.dropReservation(reservation.id);
        this.refreshSoon();
        return;
      } catch (error) {
        // If only the reply was lost, the WAL counts this settle a second time: errs high, as a
        // retried settle does in RedisCostGuard.
        if (!this.options.reachability.noteFailure(error)) throw error;
      }
    }
    // Counted before the append, with no await between dropping the reservation and counting
    // the cost, so the budget is never briefly free; and counted even if the append fails,
    // because the money is spent either way.
    const reservedAt = reservation.reservedAt ?? this.now();
    this.countOutageSpend(reservation.input, reservedAt, values);
    this.dropReservation(reservation.id);
    const data: CostSettleRecord = {
      reservationId: reservation.id,
      reservedAt,
      input: reservation.input,
      actual,
    };
    await this.options.wal.append(COST_SETTLE_KIND, data);
  }

  async release(reservation: Reservation): Promise<void> {
    if (this.dropReservation(reservation.id)) return;
    // A Redis reservation while Redis is away: its deadline frees it there.
    if (!this.options.reachability.reachable) return;
    await this.options.reachability.attempt(() => this.options.inner.release(reservation));
  }

  async snapshot(): Promise<CostSnapshot> {
    this.endOutageIfOver();
    if (this.options.reachability.reachable) {
      const read = await this.options.reachability.attempt(() => this.options.inner.snapshot());
      if (read.ok) return read.value;
    }
    return this.localSnapshot();
  }

  /**
   * Reads the current day's and month's counters from Redis as the last-known values. Resolves
   * without reading while Redis is away; other errors reject. Run it on a schedule (every 10 s):
   * the older the values when an outage begins, the more the nodes may overspend between.
   */
  refresh(): Promise<void> {
    if (!this.options.reachability.reachable) return Promise.resolve();
    this.refreshing ??= this.readLedger().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** The last-known values, for a snapshot job to save; undefined until Redis has been read. */
  exportState(): CostGuardState | undefined {
    const known = this.known;
    if (!known) return undefined;
    return {
      readAt: known.readAt,
      day: known.day,
      month: known.month,
      rows: [...known.rows.values()].map((row) => ({ ...row, values: { ...row.values } })),
    };
  }

  /**
   * Takes saved last-known values (from `exportState`), unless this guard holds newer ones.
   * Returns whether it took them; throws `InvalidCostDataError` for anything else.
   */
  importState(state: unknown): boolean {
    const parsed = stateSchema.safeParse(state);
    if (!parsed.success) throw new InvalidCostDataError('cost guard state', issuesText(parsed.error));
    if (this.known && this.known.readAt >= parsed.data.readAt) return false;
    this.known = toKnown(parsed.data);
    return true;
  }

  /**
   * Called with the write-ahead records found at start (what `wal.open()` returns): counts the
   * `cost.settle` ones as spend of this outage: they are not in Redis yet, and without them a node restarted
   * during an outage would hand out its share a second time. Records this guard cannot read are
   * skipped here (their replay sets them aside).
   */
  restorePending(records: readonly WalRecord[]): void {
    for (const record of records) {
      if (record.kind !== COST_SETTLE_KIND) continue;
      const parsed = settleRecordSchema.safeParse(record.data);
      if (!parsed.success) continue;
      const { input, reservedAt, actual } = parsed.data;
      this.countOutageSpend(input, reservedAt, checkActual(actual));
    }
  }

  private reserveLocally(input: ReserveInput): Reservation {
    const amountMicros = checkEstimate(input);
    const now = this.now();
    const outage = this.outageState();
    this.reap(now);
    // A free call cannot add to any spend, so no cap refuses it (as in the other guards).
    const capped = amountMicros === 0 ? [] : cappedCounters(this.options.budgets, input, now);
    for (const counter of capped) {
      const key = keyOf(counter);
      const used =
        (outage.spent.get(key)?.values.usdMicros ?? 0) + (this.reserved.get(key)?.values.reservedMicros ?? 0);
      if (used + amountMicros > this.allowanceMicros(counter, outage.share)) {
        throw capReached(counter);
      }
    }
    const id = randomUUID();
    if (capped.length > 0) {
      for (const counter of capped) rowIn(this.reserved, counter).values.reservedMicros += amountMicros;
      this.reservations.set(id, { amountMicros, counters: capped, deadline: now + this.ttlMs });
    }
    return { id, input, reservedAt: now };
  }

  /** This node's part of what the counter had left at the last reading; 0 when that is unknown. */
  private allowanceMicros(counter: CappedCounter, share: number): number {
    const known = this.knownValues(counter);
    if (!known) return 0;
    return Math.max(0, counter.capMicros - known.usdMicros - known.reservedMicros) / share;
  }

  /** The counter's last-known values; undefined when nothing is known of its period. */
  private knownValues(counter: LedgerCounter): CounterValues | undefined {
    const known = this.known;
    if (!known) return undefined;
    const bucket = counter.period === 'day' ? known.day : known.month;
    // Read in an earlier period: nothing had been spent yet in this one.
    if (bucket < counter.bucket) return ZERO;
    // Read in a later period (a clock behind the reader's): nothing is known of this one.
    if (bucket > counter.bucket) return undefined;
    return known.rows.get(rowKey(counter))?.values ?? ZERO;
  }

  private countOutageSpend(
    input: ReserveInput,
    at: number,
    actual: { usdMicros: number; inputTokens: number; outputTokens: number },
  ): void {
    const outage = this.outageState();
    const events: ThresholdEvent[] = [];
    for (const counter of ledgerCounters(this.options.budgets, input, at)) {
      const { values } = rowIn(outage.spent, counter);
      values.usdMicros += actual.usdMicros;
      values.inputTokens += actual.inputTokens;
      values.outputTokens += actual.outputTokens;
      values.requests += 1;
      events.push(...this.thresholdsPassed(outage, counter, values.usdMicros));
    }
    notify(this.options.onThreshold, events);
  }

  /** The thresholds this node's view of a capped counter has newly passed; none when unknown. */
  private thresholdsPassed(outage: Outage, counter: LedgerCounter, outageMicros: number): ThresholdEvent[] {
    const known = this.knownValues(counter);
    if (!isCapped(counter) || !known) return [];
    const key = keyOf(counter);
    const spent = known.usdMicros + outageMicros;
    // Thresholds passed before the outage were reported through Redis then.
    const before = outage.passed.get(key) ?? newlyPassed(counter, known.usdMicros, 0);
    const passed = newlyPassed(counter, spent, before);
    outage.passed.set(key, before | passed);
    return thresholdEvents(counter, passed, spent);
  }

  /** The current outage, begun now if none is: its share is fixed from here on. */
  private outageState(): Outage {
    if (this.outage) return this.outage;
    const share = this.currentShare();
    this.outage = { share, spent: new Map(), passed: new Map() };
    this.options.logger.info(
      { share, lastReadAt: this.known?.readAt },
      'cost guard: enforcing budgets on this node until Redis holds the spend of the outage',
    );
    return this.outage;
  }

  private currentShare(): number {
    let share: number;
    try {
      share = this.options.nodeShare();
    } catch {
      share = Number.NaN;
    }
    if (Number.isFinite(share) && share >= 1) return share;
    this.options.logger.error(
      { share },
      'cost guard: nodeShare() is not a number >= 1; capped calls are refused until Redis returns',
    );
    return Number.POSITIVE_INFINITY;
  }

  /** When the WAL has drained with Redis reachable, the outage's spend is in Redis: start again. */
  private endOutageIfOver(): void {
    const { outage, known } = this;
    if (!outage || this.options.wal.engaged) return;
    if (known) for (const row of outage.spent.values()) addToKnown(known, row);
    this.outage = undefined;
    this.folds += 1;
    this.refreshInBackground();
  }

  private localSnapshot(): CostSnapshot {
    const now = this.now();
    this.reap(now);
    const current = { day: dayBucket(now), month: monthBucket(now) };
    const merged = new Map<string, CounterRow>();
    const add = (row: Pick<CounterRow, 'dimension' | 'subject' | 'period'>, values: CounterValues) => {
      const key = rowKey(row);
      const sum = merged.get(key)?.values ?? { ...ZERO };
      sum.usdMicros += values.usdMicros;
      sum.inputTokens += values.inputTokens;
      sum.outputTokens += values.outputTokens;
      sum.requests += values.requests;
      sum.reservedMicros += values.reservedMicros;
      merged.set(key, { dimension: row.dimension, subject: row.subject, period: row.period, values: sum });
    };
    const known = this.known;
    if (known) {
      for (const row of known.rows.values()) {
        if ((row.period === 'day' ? known.day : known.month) === current[row.period]) add(row, row.values);
      }
    }
    for (const { counter, values } of [...(this.outage?.spent.values() ?? []), ...this.reserved.values()]) {
      if (counter.bucket === current[counter.period]) add(counter, values);
    }
    return buildSnapshot(this.options.budgets, now, [...merged.values()]);
  }

  /**
   * Applies one `cost.settle` record to Redis, once per record id. Settle, then mark: a crash (or
   * a lost reply) between the two replays the record and counts it twice. That errs high, as a
   * retried settle does in RedisCostGuard; marking first would err low, losing spend.
   */
  private async replaySettle(record: WalRecord): Promise<void> {
    const parsed = settleRecordSchema.safeParse(record.data);
    if (!parsed.success) throw new InvalidCostDataError(`WAL record ${record.id}`, issuesText(parsed.error));
    const { reservationId, reservedAt, input, actual } = parsed.data;
    const { redis, keyPrefix, inner } = this.options;
    const marker = `${keyPrefix}:wal-applied:${record.id}`;
    if ((await redis.exists(marker)) > 0) return;
    await inner.settle({ id: reservationId, input, reservedAt }, actual);
    await redis.set(marker, '1', 'PX', WAL_APPLIED_TTL_MS);
  }

  private async readLedger(): Promise<void> {
    this.lastRefreshAt = this.now();
    try {
      let reading: LedgerReading;
      let folds: number;
      // A reading taken while an outage's spend was added to the old one may not hold that spend.
      do {
        folds = this.folds;
        reading = await this.options.inner.readLedger();
      } while (folds !== this.folds);
      if (!this.known || reading.readAt >= this.known.readAt) this.known = toKnown(reading);
    } catch (error) {
      if (!this.options.reachability.noteFailure(error)) throw error;
    }
  }

  private refreshSoon(): void {
    if (this.now() - this.lastRefreshAt >= SETTLE_REFRESH_INTERVAL_MS) this.refreshInBackground();
  }

  private refreshInBackground(): void {
    this.refresh().catch((error: unknown) => this.logRefreshFailure(error));
  }

  private logRefreshFailure(error: unknown): void {
    this.options.logger.warn({ err: (error as Error).message }, 'cost guard: could not read the ledger');
  }

  /** Frees what reservations made here hold once their deadline passed (their call never came back). */
  private reap(now: number): void {
    for (const [id, held] of this.reservations) {
      if (held.deadline <= now) this.dropReservation(id);
    }
  }

  /** Frees a reservation made here; false when it was not made here. */
  private dropReservation(id: string): boolean {
    const held = this.reservations.get(id);
    if (!held) return false;
    this.reservations.delete(id);
    for (const counter of held.counters) {
      const key = keyOf(counter);
      const row = this.reserved.get(key);
      if (!row) continue;
      row.values.reservedMicros -= held.amountMicros;
      if (row.values.reservedMicros <= 0) this.reserved.delete(key);
    }
    return true;
  }

  private readonly onLost = () => {
    this.outageState();
  };

  private readonly onRegained = () => this.refreshInBackground();
}

const ZERO: Readonly<CounterValues> = {
  usdMicros: 0,
  inputTokens: 0,
  outputTokens: 0,
  requests: 0,
  reservedMicros: 0,
};

/** A counter in its period bucket. */
function keyOf(counter: Pick<LedgerCounter, 'dimension' | 'subject' | 'bucket'>): string {
  return `${counter.dimension}|${counter.bucket}|${counter.subject}`;
}

/** A counter within a reading (whose buckets are the reading's). */
function rowKey(row: { dimension: LedgerDimension; subject: string; period: Period }): string {
  return `${row.dimension}|${row.period}|${row.subject}`;
}

function rowIn(rows: Map<string, LocalRow>, counter: LedgerCounter): LocalRow {
  const key = keyOf(counter);
  let row = rows.get(key);
  if (!row) {
    row = { counter, values: { ...ZERO } };
    rows.set(key, row);
  }
  return row;
}

function toKnown(reading: LedgerReading): Known {
  return {
    readAt: reading.readAt,
    day: reading.day,
    month: reading.month,
    rows: new Map(reading.rows.map((row) => [rowKey(row), { ...row, values: { ...row.values } }])),
  };
}

/** Adds spend Redis now holds to the last-known values, as if read with them. */
function addToKnown(known: Known, { counter, values }: LocalRow): void {
  const bucket = counter.period === 'day' ? known.day : known.month;
  // An earlier period: no current cap counts it.
  if (counter.bucket < bucket) return;
  if (counter.bucket > bucket) {
    // The reading is of an earlier period, so it counts as nothing spent in this one: start this
    // one from what this node knows it spent.
    for (const [key, row] of known.rows) if (row.period === counter.period) known.rows.delete(key);
    if (counter.period === 'day') known.day = counter.bucket;
    else known.month = counter.bucket;
  }
  const key = rowKey(counter);
  const row = known.rows.get(key) ?? {
    dimension: counter.dimension,
    subject: counter.subject,
    period: counter.period,
    values: { ...ZERO },
  };
  row.values.usdMicros += values.usdMicros;
  row.values.inputTokens += values.inputTokens;
  row.values.outputTokens += values.outputTokens;
  row.values.requests += values.requests;
  known.rows.set(key, row);
}

function issuesText(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

const settleRecordSchema = z.object({
  reservationId: z.string().min(1),
  reservedAt: z.number(),
  input: z.object({
    providerId: z.string().min(1),
    model: z.string(),
    personId: z.string().optional(),
    channel: z.string().optional(),
    estimatedUsd: z.number(),
  }),
  actual: z.object({ usd: z.number(), inputTokens: z.number(), outputTokens: z.number() }),
});

const counterValuesSchema = z.object({
  usdMicros: z.number().int(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  requests: z.number().int(),
  reservedMicros: z.number().int(),
});

const stateSchema = z.object({
  readAt: z.number(),
  day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  month: z.string().regex(/^\d{4}-\d{2}$/),
  rows: z.array(
    z.object({
      dimension: z.enum(['global', 'provider', 'person', 'channel']),
      subject: z.string(),
      period: z.enum(['day', 'month']),
      values: counterValuesSchema,
    }),
  ),
});
