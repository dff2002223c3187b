import type { BudgetConfig, BudgetLimits } from './budget-config.js';
import {
  BudgetExceededError,
  type BudgetScope,
  type CostGuard,
  type ReserveInput,
  type SettleInput,
} from './cost-guard.js';

/**
 * What both cost guards share: period buckets, the counters one call is recorded in, money in
 * integer micro-dollars, threshold detection and the `/status` snapshot.
 *
 * Every call is recorded in up to eight LEDGER COUNTERS: {global, its provider, its person, its
 * channel} x {its UTC day, its UTC month}. A counter holds the settled spend, tokens and request
 * count, plus the estimates currently reserved on it. The global, provider and person counters
 * may carry a hard CAP from the budget config; channels are recorded only.
 */
export type Period = 'day' | 'month';
export type LedgerDimension = BudgetScope | 'channel';

export const GLOBAL_SUBJECT = 'global';
export const DEFAULT_RESERVATION_TTL_MS = 10 * 60_000;

export const MICROS_PER_USD = 1_000_000;

/** Whole micro-dollars: money is added as integers, so sums never drift. */
export function toMicros(usd: number): number {
  return Math.round(usd * MICROS_PER_USD);
}

export function fromMicros(micros: number): number {
  return micros / MICROS_PER_USD;
}

/** `YYYY-MM-DD` of the UTC day holding `ms`. */
export function dayBucket(ms: number): string {
  return utcDayOf(ms).day;
}

/** `YYYY-MM` of the UTC month holding `ms`. */
export function monthBucket(ms: number): string {
  return utcDayOf(ms).month;
}

/** A UTC day: where it starts, where it and its month end, and their bucket names. */
interface UtcDay {
  startMs: number;
  endMs: number;
  monthEndMs: number;
  day: string;
  month: string;
}

/**
 * The last UTC day asked about. A call looks up its buckets and period ends a dozen times
 * (reserve, settle, each counter), nearly always for the same day; working them out from a date
 * each time was a visible share of the gateway's CPU.
 */
let lastDay: UtcDay = { startMs: 0, endMs: 0, monthEndMs: 0, day: '', month: '' };

function utcDayOf(ms: number): UtcDay {
  if (ms >= lastDay.startMs && ms < lastDay.endMs) return lastDay;
  const d = new Date(ms);
  const [year, month, date] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
  const iso = d.toISOString();
  lastDay = {
    startMs: Date.UTC(year, month, date),
    endMs: Date.UTC(year, month, date + 1),
    monthEndMs: Date.UTC(year, month + 1, 1),
    day: iso.slice(0, 10),
    month: iso.slice(0, 7),
  };
  return lastDay;
}

export function bucketOf(period: Period, ms: number): string {
  return period === 'day' ? dayBucket(ms) : monthBucket(ms);
}

/** The first millisecond after the period holding `ms`. */
export function periodEndMs(period: Period, ms: number): number {
  const day = utcDayOf(ms);
  return period === 'day' ? day.endMs : day.monthEndMs;
}

export interface LedgerCounter {
  dimension: LedgerDimension;
  subject: string;
  period: Period;
  bucket: string;
  /** Set when a hard cap applies. */
  capMicros?: number;
  /** Spend at which the warning fires (`warnAtFraction` of the cap). */
  warnAtMicros?: number;
}

export interface CappedCounter extends LedgerCounter {
  dimension: BudgetScope;
  capMicros: number;
  warnAtMicros: number;
}

/** The refusal of a call that would take `counter` past its cap. */
export function capReached(counter: CappedCounter): BudgetExceededError {
  return new BudgetExceededError(
    counter.dimension,
    counter.period,
    fromMicros(counter.capMicros),
    counter.subject,
  );
}

export function isCapped(counter: LedgerCounter): counter is CappedCounter {
  return counter.capMicros !== undefined;
}

/**
 * Every counter a call made at `at` is recorded in, in check order: global, provider, person,
 * channel, and within each the day before the month. The first capped counter that refuses a
 * reservation is the one `BudgetExceededError` names.
 */
export function ledgerCounters(
  config: BudgetConfig,
  input: Pick<ReserveInput, 'providerId' | 'personId' | 'channel'>,
  at: number,
): LedgerCounter[] {
  const subjects: [LedgerDimension, string, BudgetLimits | undefined][] = [
    ['global', GLOBAL_SUBJECT, config.global],
    ['provider', input.providerId, config.perProvider?.[input.providerId]],
  ];
  if (input.personId !== undefined) subjects.push(['person', input.personId, config.perPerson]);
  if (input.channel !== undefined) subjects.push(['channel', input.channel, undefined]);
  const counters: LedgerCounter[] = [];
  for (const [dimension, subject, limits] of subjects) {
    for (const period of ['day', 'month'] as const) {
      const counter: LedgerCounter = { dimension, subject, period, bucket: bucketOf(period, at) };
      const cap = period === 'day' ? limits?.dailyUsd : limits?.monthlyUsd;
      if (cap !== undefined) {
        counter.capMicros = toMicros(cap);
        counter.warnAtMicros = Math.round(counter.capMicros * config.warnAtFraction);
      }
      counters.push(counter);
    }
  }
  return counters;
}

export function cappedCounters(
  config: BudgetConfig,
  input: Pick<ReserveInput, 'providerId' | 'personId' | 'channel'>,
  at: number,
): CappedCounter[] {
  // Most agents set no caps: then no counter is built just to be filtered out, on every call.
  if (!config.global && !config.perPerson && !config.perProvider?.[input.providerId]) return [];
  return ledgerCounters(config, input, at).filter(isCapped);
}

/** Bit flags of the thresholds a counter has passed. */
export const WARNED = 1;
export const EXHAUSTED = 2;

/** The thresholds `spentMicros` has passed that `alreadyPassed` does not hold yet. */
export function newlyPassed(counter: LedgerCounter, spentMicros: number, alreadyPassed: number): number {
  if (!isCapped(counter) || counter.capMicros <= 0) return 0;
  let passed = 0;
  if (spentMicros >= counter.warnAtMicros) passed |= WARNED;
  if (spentMicros >= counter.capMicros) passed |= EXHAUSTED;
  return passed & ~alreadyPassed;
}

export interface ThresholdEvent {
  scope: BudgetScope;
  subject: string;
  period: Period;
  /** The period it happened in: `YYYY-MM-DD` or `YYYY-MM`. */
  bucket: string;
  /** `warn`: spending passed `warnAtFraction` of the cap; `exhausted`: it reached the cap. */
  level: 'warn' | 'exhausted';
  limitUsd: number;
  spentUsd: number;
}

export function thresholdEvents(
  counter: LedgerCounter,
  passed: number,
  spentMicros: number,
): ThresholdEvent[] {
  if (!isCapped(counter)) return [];
  const base = {
    scope: counter.dimension,
    subject: counter.subject,
    period: counter.period,
    bucket: counter.bucket,
    limitUsd: fromMicros(counter.capMicros),
    spentUsd: fromMicros(spentMicros),
  };
  const events: ThresholdEvent[] = [];
  if (passed & WARNED) events.push({ ...base, level: 'warn' });
  if (passed & EXHAUSTED) events.push({ ...base, level: 'exhausted' });
  return events;
}

export interface CounterValues {
  usdMicros: number;
  inputTokens: number;
  outputTokens: number;
  requests: number;
  reservedMicros: number;
}

export interface LedgerTotals {
  dayUsd: number;
  monthUsd: number;
  dayRequests: number;
  monthRequests: number;
  dayInputTokens: number;
  monthInputTokens: number;
  dayOutputTokens: number;
  monthOutputTokens: number;
}

export interface BudgetStatus {
  scope: BudgetScope;
  subject: string;
  period: Period;
  limitUsd: number;
  spentUsd: number;
  /** Estimates of calls in flight. */
  reservedUsd: number;
  /** `spentUsd / limitUsd` (1 for a zero cap). */
  fraction: number;
}

export interface CostSnapshot {
  /** The current periods: `YYYY-MM-DD` and `YYYY-MM` (UTC). */
  day: string;
  month: string;
  total: LedgerTotals;
  providers: Record<string, LedgerTotals>;
  persons: Record<string, LedgerTotals>;
  channels: Record<string, LedgerTotals>;
  /** Every cap that applies this period: global, each capped provider, each person seen. */
  budgets: BudgetStatus[];
}

/** A cost guard that also keeps the ledger. */
export interface MeteredCostGuard extends CostGuard {
  readonly backend: 'local' | 'redis';
  open(): Promise<void>;
  close(): Promise<void>;
  snapshot(): Promise<CostSnapshot>;
}

export interface CostGuardCommonOptions {
  budgets: BudgetConfig;
  /** Epoch ms. Default `Date.now`. */
  now?: () => number;
  /**
   * How long a reservation holds budget if it is neither settled nor released (its process
   * died). Must exceed the longest call, retries included. Default 10 minutes.
   */
  reservationTtlMs?: number;
  /**
   * Called once per (scope, subject, period) when spending passes `warnAtFraction` of a cap, and
   * once when it reaches the cap. Errors it throws are ignored.
   */
  onThreshold?: (event: ThresholdEvent) => void;
}

export interface CounterRow {
  dimension: LedgerDimension;
  subject: string;
  period: Period;
  values: CounterValues;
}

/** Builds the `/status` view from the current period's counters. */
export function buildSnapshot(config: BudgetConfig, now: number, rows: readonly CounterRow[]): CostSnapshot {
  const day = dayBucket(now);
  const month = monthBucket(now);
  const values = new Map<string, CounterValues>();
  const subjects: Record<LedgerDimension, Set<string>> = {
    global: new Set([GLOBAL_SUBJECT]),
    provider: new Set(Object.keys(config.perProvider ?? {})),
    person: new Set(),
    channel: new Set(),
  };
  for (const row of rows) {
    values.set(rowKey(row.dimension, row.subject, row.period), row.values);
    subjects[row.dimension].add(row.subject);
  }
  const get = (dimension: LedgerDimension, subject: string, period: Period) =>
    values.get(rowKey(dimension, subject, period)) ?? EMPTY;
  const totals = (dimension: LedgerDimension, subject: string): LedgerTotals => {
    const d = get(dimension, subject, 'day');
    const m = get(dimension, subject, 'month');
    return {
      dayUsd: fromMicros(d.usdMicros),
      monthUsd: fromMicros(m.usdMicros),
      dayRequests: d.requests,
      monthRequests: m.requests,
      dayInputTokens: d.inputTokens,
      monthInputTokens: m.inputTokens,
      dayOutputTokens: d.outputTokens,
      monthOutputTokens: m.outputTokens,
    };
  };
  const byDimension = (dimension: LedgerDimension) =>
    Object.fromEntries([...subjects[dimension]].sort().map((s) => [s, totals(dimension, s)]));

  const budgets: BudgetStatus[] = [];
  const addBudgets = (scope: BudgetScope, subject: string, limits: BudgetLimits | undefined) => {
    for (const period of ['day', 'month'] as const) {
      const limitUsd = period === 'day' ? limits?.dailyUsd : limits?.monthlyUsd;
      if (limitUsd === undefined) continue;
      const v = get(scope, subject, period);
      const spentUsd = fromMicros(v.usdMicros);
      budgets.push({
        scope,
        subject,
        period,
        limitUsd,
        spentUsd,
        reservedUsd: fromMicros(v.reservedMicros),
        fraction: limitUsd > 0 ? spentUsd / limitUsd : 1,
      });
    }
  };
  addBudgets('global', GLOBAL_SUBJECT, config.global);
  for (const [providerId, limits] of Object.entries(config.perProvider ?? {})) {
    addBudgets('provider', providerId, limits);
  }
  for (const personId of [...subjects.person].sort()) addBudgets('person', personId, config.perPerson);

  return {
    day,
    month,
    total: totals('global', GLOBAL_SUBJECT),
    providers: byDimension('provider'),
    persons: byDimension('person'),
    channels: byDimension('channel'),
    budgets,
  };
}

const EMPTY: CounterValues = {
  usdMicros: 0,
  inputTokens: 0,
  outputTokens: 0,
  requests: 0,
  reservedMicros: 0,
};

function rowKey(dimension: LedgerDimension, subject: string, period: Period): string {
  return `${dimension}|${period}|${subject}`;
}

export function checkEstimate(input: ReserveInput): number {
  if (!Number.isFinite(input.estimatedUsd) || input.estimatedUsd < 0) {
    throw new RangeError(`estimatedUsd must be a finite number >= 0, got ${input.estimatedUsd}`);
  }
  return toMicros(input.estimatedUsd);
}

export function checkActual(actual: SettleInput): {
  usdMicros: number;
  inputTokens: number;
  outputTokens: number;
} {
  if (!Number.isFinite(actual.usd) || actual.usd < 0) {
    throw new RangeError(`usd must be a finite number >= 0, got ${actual.usd}`);
  }
  const tokens = (n: number) => (Number.isFinite(n) && n > 0 ? Math.round(n) : 0);
  return {
    usdMicros: toMicros(actual.usd),
    inputTokens: tokens(actual.inputTokens),
    outputTokens: tokens(actual.outputTokens),
  };
}

/** Runs the callback for each event, never letting it break a settle. */
export function notify(onThreshold: ((event: ThresholdEvent) => void) | undefined, events: ThresholdEvent[]) {
  if (!onThreshold) return;
  for (const event of events) {
    try {
      onThreshold(event);
    } catch {
      // A failing alert must not fail the call it reports on.
    }
  }
}
