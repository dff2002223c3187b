import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { AppendLog, rewriteLog } from '../../core/memory/append-log.js';
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

export const COSTS_LOG_FILE = 'costs.log';

/**
 * What `costs.log` holds:
 * - `call`: one settled call, charged to the day and month of `at` (its reservation time);
 * - `mark`: a threshold passed on a counter, so a restart does not warn about it again;
 * - `total`: a counter's totals, written when the log is compacted on open.
 */
export type CostRecord =
  | {
      t: 'call';
      at: number;
      providerId: string;
      model: string;
      personId?: string;
      channel?: string;
      usdMicros: number;
      inputTokens: number;
      outputTokens: number;
    }
  | { t: 'mark'; dimension: LedgerDimension; subject: string; period: Period; bucket: string; passed: number }
  | {
      t: 'total';
      dimension: LedgerDimension;
      subject: string;
      period: Period;
      bucket: string;
      usdMicros: number;
      inputTokens: number;
      outputTokens: number;
      requests: number;
      passed: number;
    };

export interface LocalCostGuardOptions extends CostGuardCommonOptions {
  /** The log is `<dataDir>/costs.log`. */
  dataDir: string;
  /** Told about damaged records skipped on open (a torn last record is expected after a crash). */
  logger?: { warn(details: object, message: string): void; error(details: object, message: string): void };
}

interface CounterState {
  dimension: LedgerDimension;
  subject: string;
  period: Period;
  bucket: string;
  usdMicros: number;
  inputTokens: number;
  outputTokens: number;
  requests: number;
  reservedMicros: number;
  /** WARNED / EXHAUSTED flags already reported. */
  passed: number;
}

interface HeldReservation {
  amountMicros: number;
  keys: string[];
  deadline: number;
}

/**
 * Embedded mode: one process, so a plain check-then-add is atomic (nothing awaits between the
 * check and the add). Settled spend is made durable through an append-only log before it counts,
 * so a restart keeps the month's totals; reservations live in memory only, because a restart
 * ends the calls they were for. On open, the log is folded into per-counter totals of the
 * current month and rewritten if that makes it shorter, so it does not grow without bound.
 */
export class LocalCostGuard implements MeteredCostGuard {
  readonly backend = 'local' as const;
  readonly path: string;
  private log: AppendLog<CostRecord>;
  private readonly counters = new Map<string, CounterState>();
  private readonly reservations = new Map<string, HeldReservation>();
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly budgets: BudgetConfig;
  private currentDay = '';
  private currentMonth = '';
  /** The day the log was last rewritten as current totals, and the records appended since. */
  private compactedDay = '';
  private appendsSinceCompaction = 0;
  /** Bumped by each compaction: an append that failed because it closed the log is in its totals. */
  private compactions = 0;

  constructor(private readonly options: LocalCostGuardOptions) {
    this.path = join(options.dataDir, COSTS_LOG_FILE);
    this.log = new AppendLog<CostRecord>(this.path);
    this.now = options.now ?? Date.now;
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.budgets = options.budgets;
  }

  async open(): Promise<void> {
    const loaded = this.log.open();
    if (loaded.skipped > 0) {
      this.options.logger?.warn(
        { path: this.path, skipped: loaded.skipped, tornTail: loaded.tornTail },
        'cost log: skipped damaged records (a torn last record is expected after a crash)',
      );
    }
    this.rollover(this.now());
    for (const record of loaded.records) this.replay(record);
    if (loaded.records.length > this.counters.size) await this.compact();
  }

  /**
   * The budget roll-up, while running: forgets the counters of past periods (as a new day does)
   * and rewrites the log as the current periods' totals (as `open` does at start), unless it has
   * been rewritten today with nothing appended since. Returns whether it rewrote the log.
   */
  async rollUp(): Promise<boolean> {
    this.rollover(this.now());
    if (this.compactedDay === this.currentDay && this.appendsSinceCompaction === 0) return false;
    return this.compact();
  }

  async close(): Promise<void> {
    await this.log.close();
  }

  async reserve(input: ReserveInput): Promise<Reservation> {
    const amountMicros = checkEstimate(input);
    const now = this.now();
    this.rollover(now);
    this.reap(now);
    // A free call cannot add to any spend, so no cap refuses it (not even one already passed).
    const capped = amountMicros === 0 ? [] : cappedCounters(this.budgets, input, now);
    for (const counter of capped) {
      const state = this.counters.get(keyOf(counter));
      const used = (state?.usdMicros ?? 0) + (state?.reservedMicros ?? 0);
      if (used + amountMicros > counter.capMicros) {
        throw capReached(counter);
      }
    }
    const id = randomUUID();
    if (capped.length > 0) {
      for (const counter of capped) this.state(counter).reservedMicros += amountMicros;
      this.reservations.set(id, { amountMicros, keys: capped.map(keyOf), deadline: now + this.ttlMs });
    }
    return { id, input, reservedAt: now };
  }

  async settle(reservation: Reservation, actual: SettleInput): Promise<void> {
    const { usdMicros, inputTokens, outputTokens } = checkActual(actual);
    const { input } = reservation;
    const record: CostRecord = {
      t: 'call',
      at: reservation.reservedAt ?? this.now(),
      providerId: input.providerId,
      model: input.model,
      ...(input.personId !== undefined ? { personId: input.personId } : {}),
      ...(input.channel !== undefined ? { channel: input.channel } : {}),
      usdMicros,
      inputTokens,
      outputTokens,
    };
    // Counted in memory at once, and written with the log's next group commit without holding
    // up the reply: an fsync here was most of the gateway's added latency. The reservation is
    // swapped for the spend with no await in between, so the budget is never briefly free. If
    // the process dies within that commit (a few milliseconds), those calls are missing from the
    // log after the restart; the Redis guard has no such window.
    const compactions = this.compactions;
    this.appendsSinceCompaction += 1;
    this.log.append(record).catch((error: unknown) => {
      // A compaction that closed the log meanwhile wrote this call's totals itself.
      if (this.compactions !== compactions) return;
      this.options.logger?.error({ err: error, record }, 'cost log: a settled call could not be written');
    });
    this.rollover(this.now());
    this.drop(reservation.id);
    const events: ThresholdEvent[] = [];
    const marks: CostRecord[] = [];
    for (const counter of ledgerCounters(this.budgets, input, record.at)) {
      const state = this.apply(counter, record);
      if (!state) continue;
      const passed = newlyPassed(counter, state.usdMicros, state.passed);
      if (passed === 0) continue;
      state.passed |= passed;
      events.push(...thresholdEvents(counter, passed, state.usdMicros));
      marks.push({ t: 'mark', ...identity(state), passed: state.passed });
    }
    notify(this.options.onThreshold, events);
    if (marks.length > 0) {
      this.appendsSinceCompaction += marks.length;
      this.log.appendMany(marks).catch(() => {});
    }
  }

  async release(reservation: Reservation): Promise<void> {
    this.drop(reservation.id);
  }

  async snapshot(): Promise<CostSnapshot> {
    const now = this.now();
    this.rollover(now);
    this.reap(now);
    const rows: CounterRow[] = [];
    for (const state of this.counters.values()) {
      rows.push({
        dimension: state.dimension,
        subject: state.subject,
        period: state.period,
        values: state,
      });
    }
    return buildSnapshot(this.budgets, now, rows);
  }

  /** Adds a settled call to one counter, if that counter is in the current period. */
  private apply(
    counter: LedgerCounter,
    record: Extract<CostRecord, { t: 'call' }>,
  ): CounterState | undefined {
    if (!this.isCurrent(counter.bucket)) return undefined;
    const state = this.state(counter);
    state.usdMicros += record.usdMicros;
    state.inputTokens += record.inputTokens;
    state.outputTokens += record.outputTokens;
    state.requests += 1;
    return state;
  }

  private replay(record: CostRecord): void {
    if (record.t === 'call') {
      for (const counter of ledgerCounters(this.budgets, record, record.at)) this.apply(counter, record);
      return;
    }
    if (!this.isCurrent(record.bucket)) return;
    const state = this.state(record);
    state.passed |= record.passed;
    if (record.t === 'total') {
      state.usdMicros += record.usdMicros;
      state.inputTokens += record.inputTokens;
      state.outputTokens += record.outputTokens;
      state.requests += record.requests;
    }
  }

  /**
   * Rewrites the log as one `total` record per counter of the current periods: write a new file,
   * fsync it, rename it over the old one, fsync the directory. A crash at any point leaves
   * either the old log or the new one, both complete.
   */
  private async compact(): Promise<boolean> {
    this.compactions += 1;
    await this.log.close();
    let rewritten = false;
    try {
      rewriteLog(
        this.path,
        [...this.counters.values()].map(
          (state) =>
            ({
              t: 'total',
              ...identity(state),
              usdMicros: state.usdMicros,
              inputTokens: state.inputTokens,
              outputTokens: state.outputTokens,
              requests: state.requests,
              passed: state.passed,
            }) satisfies CostRecord,
        ),
      );
      this.compactedDay = this.currentDay;
      this.appendsSinceCompaction = 0;
      rewritten = true;
    } catch (error) {
      // The old log is still whole: keep appending to it and try again on the next open.
      this.options.logger?.warn({ path: this.path, err: error }, 'cost log: compaction failed');
    }
    this.log = new AppendLog<CostRecord>(this.path);
    this.log.open();
    return rewritten;
  }

  /** On a new UTC day, forgets the counters of past periods. */
  private rollover(now: number): void {
    const day = dayBucket(now);
    if (day === this.currentDay) return;
    this.currentDay = day;
    this.currentMonth = monthBucket(now);
    for (const [key, state] of this.counters) {
      if (!this.isCurrent(state.bucket)) this.counters.delete(key);
    }
  }

  private isCurrent(bucket: string): boolean {
    return bucket === this.currentDay || bucket === this.currentMonth;
  }

  /** Frees the budget of reservations whose deadline passed (their caller never came back). */
  private reap(now: number): void {
    for (const [id, held] of this.reservations) {
      if (held.deadline <= now) this.drop(id);
    }
  }

  private drop(id: string): void {
    const held = this.reservations.get(id);
    if (!held) return;
    this.reservations.delete(id);
    for (const key of held.keys) {
      const state = this.counters.get(key);
      if (state) state.reservedMicros -= held.amountMicros;
    }
  }

  private state(counter: Pick<LedgerCounter, 'dimension' | 'subject' | 'period' | 'bucket'>): CounterState {
    const key = keyOf(counter);
    let state = this.counters.get(key);
    if (!state) {
      state = {
        ...identity(counter),
        usdMicros: 0,
        inputTokens: 0,
        outputTokens: 0,
        requests: 0,
        reservedMicros: 0,
        passed: 0,
      };
      this.counters.set(key, state);
    }
    return state;
  }
}

function identity(counter: Pick<LedgerCounter, 'dimension' | 'subject' | 'period' | 'bucket'>) {
  return {
    dimension: counter.dimension,
    subject: counter.subject,
    period: counter.period,
    bucket: counter.bucket,
  };
}

function keyOf(counter: Pick<LedgerCounter, 'dimension' | 'subject' | 'bucket'>): string {
  return `${counter.dimension}|${counter.bucket}|${counter.subject}`;
}
