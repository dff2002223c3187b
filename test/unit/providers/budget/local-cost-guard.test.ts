import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BudgetConfigInput,
  budgetConfigSchema,
} from '../../../../src/providers/budget/budget-config.js';
import { BudgetExceededError, type ReserveInput } from '../../../../src/providers/budget/cost-guard.js';
import type { ThresholdEvent } from '../../../../src/providers/budget/ledger.js';
import { COSTS_LOG_FILE, LocalCostGuard } from '../../../../src/providers/budget/local-cost-guard.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOON = Date.UTC(2026, 10, 25, 12); // 2026-11-25T12:00Z

const call = (estimatedUsd: number, extra: Partial<ReserveInput> = {}): ReserveInput => ({
  providerId: 'openai',
  model: 'gpt-4o-mini',
  personId: 'alice',
  channel: 'telegram',
  estimatedUsd,
  ...extra,
});

const spent = (usd: number) => ({ usd, inputTokens: 1000, outputTokens: 100 });

describe('LocalCostGuard', () => {
  const open: LocalCostGuard[] = [];
  let clock = NOON;
  afterEach(async () => {
    await Promise.all(open.splice(0).map((g) => g.close()));
    clock = NOON;
  });

  async function guard(
    budgets: BudgetConfigInput,
    options: { dataDir?: string; events?: ThresholdEvent[]; reservationTtlMs?: number } = {},
  ) {
    const g = new LocalCostGuard({
      dataDir: options.dataDir ?? mkdtempSync(join(tmpdir(), 'agent-costs-')),
      budgets: budgetConfigSchema.parse(budgets),
      now: () => clock,
      ...(options.reservationTtlMs ? { reservationTtlMs: options.reservationTtlMs } : {}),
      ...(options.events ? { onThreshold: (e: ThresholdEvent) => options.events?.push(e) } : {}),
    });
    await g.open();
    open.push(g);
    return g;
  }

  async function refusal(promise: Promise<unknown>): Promise<BudgetExceededError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BudgetExceededError);
    return error as BudgetExceededError;
  }

  it('refuses a call that would pass a cap, naming the first scope and period hit', async () => {
    const g = await guard({
      global: { dailyUsd: 10, monthlyUsd: 100 },
      perProvider: { openai: { dailyUsd: 2 } },
      perPerson: { dailyUsd: 1, monthlyUsd: 0.5 },
    });
    // Global and provider fit, the person's day fits, the person's month (0.5) does not.
    expect(await refusal(g.reserve(call(0.6)))).toMatchObject({
      scope: 'person',
      period: 'month',
      subject: 'alice',
      limitUsd: 0.5,
      code: 'budget_exceeded',
    });
    expect(await refusal(g.reserve(call(3, { personId: 'bob' })))).toMatchObject({
      scope: 'provider',
      period: 'day',
      subject: 'openai',
      limitUsd: 2,
    });
    expect(await refusal(g.reserve(call(11, { providerId: 'anthropic' })))).toMatchObject({
      scope: 'global',
      period: 'day',
    });
    // Other providers and calls without a person are not held by those caps.
    await expect(g.reserve(call(3, { providerId: 'anthropic', personId: undefined }))).resolves.toMatchObject(
      {
        input: { providerId: 'anthropic' },
      },
    );
  });

  it('holds reservations against the cap until they are settled or released', async () => {
    const g = await guard({ global: { dailyUsd: 1 } });
    const first = await g.reserve(call(0.6));
    await refusal(g.reserve(call(0.6)));
    await g.release(first);
    const second = await g.reserve(call(0.6));
    // Settling for less than the estimate frees the difference.
    await g.settle(second, spent(0.3));
    const third = await g.reserve(call(0.7));
    await refusal(g.reserve(call(0.01)));
    await g.release(third);
    const snapshot = await g.snapshot();
    expect(snapshot.budgets).toEqual([
      {
        scope: 'global',
        subject: 'global',
        period: 'day',
        limitUsd: 1,
        spentUsd: 0.3,
        reservedUsd: 0,
        fraction: 0.3,
      },
    ]);
  });

  it('always allows free calls: under a zero cap, and after a cap was passed', async () => {
    const g = await guard({ global: { dailyUsd: 1 }, perProvider: { ollama: { dailyUsd: 0 } } });
    await g.settle(await g.reserve(call(0, { providerId: 'ollama' })), spent(0));
    await refusal(g.reserve(call(0.000001, { providerId: 'ollama' })));
    // The real cost passed the global cap: paid calls are refused, free ones still pass.
    await g.settle(await g.reserve(call(0.9)), spent(1.2));
    await refusal(g.reserve(call(0.01)));
    await g.settle(await g.reserve(call(0, { providerId: 'ollama' })), spent(0));
  });

  it('resets the daily budget at UTC midnight but not the monthly one', async () => {
    const g = await guard({ global: { dailyUsd: 1, monthlyUsd: 1.5 } });
    await g.settle(await g.reserve(call(0.9)), spent(0.9));
    await refusal(g.reserve(call(0.2)));
    clock = Date.UTC(2026, 10, 26, 0, 0, 1);
    const snapshot = await g.snapshot();
    expect(snapshot.day).toBe('2026-11-26');
    expect(snapshot.total).toMatchObject({ dayUsd: 0, monthUsd: 0.9, dayRequests: 0, monthRequests: 1 });
    // The new day has room, the month does not.
    expect(await refusal(g.reserve(call(0.7)))).toMatchObject({ scope: 'global', period: 'month' });
    await g.settle(await g.reserve(call(0.5)), spent(0.5));
    // A new month resets both.
    clock = Date.UTC(2026, 11, 1, 0, 0, 1);
    await g.settle(await g.reserve(call(0.9)), spent(0.9));
    expect((await g.snapshot()).total).toMatchObject({ dayUsd: 0.9, monthUsd: 0.9 });
  });

  it('charges a call to the day it was reserved in', async () => {
    const g = await guard({ global: { dailyUsd: 1 } });
    clock = Date.UTC(2026, 10, 25, 23, 59, 59);
    const r = await g.reserve(call(0.5));
    clock += 2000;
    await g.settle(r, spent(0.5));
    expect((await g.snapshot()).total).toMatchObject({ dayUsd: 0, monthUsd: 0.5 });
  });

  it('keeps the ledger per provider, person and channel', async () => {
    const g = await guard({ perPerson: { dailyUsd: 5 } });
    await g.settle(await g.reserve(call(0.1)), { usd: 0.1, inputTokens: 1000, outputTokens: 200 });
    await g.settle(
      await g.reserve(call(0.2, { providerId: 'anthropic', personId: 'bob', channel: 'slack' })),
      {
        usd: 0.25,
        inputTokens: 3000,
        outputTokens: 400,
      },
    );
    await g.settle(await g.reserve(call(0.2, { personId: undefined, channel: undefined })), {
      usd: 0.05,
      inputTokens: 10,
      outputTokens: 20,
    });
    const held = await g.reserve(call(1));
    const s = await g.snapshot();
    expect(s.total).toEqual({
      dayUsd: 0.4,
      monthUsd: 0.4,
      dayRequests: 3,
      monthRequests: 3,
      dayInputTokens: 4010,
      monthInputTokens: 4010,
      dayOutputTokens: 620,
      monthOutputTokens: 620,
    });
    expect(s.providers.openai).toMatchObject({ dayUsd: 0.15, dayRequests: 2, dayInputTokens: 1010 });
    expect(s.providers.anthropic).toMatchObject({ monthUsd: 0.25, monthOutputTokens: 400 });
    expect(Object.keys(s.persons)).toEqual(['alice', 'bob']);
    expect(s.persons.alice).toMatchObject({ dayUsd: 0.1, dayRequests: 1 });
    expect(s.channels).toMatchObject({ slack: { dayUsd: 0.25 }, telegram: { dayUsd: 0.1 } });
    expect(s.budgets).toEqual([
      {
        scope: 'person',
        subject: 'alice',
        period: 'day',
        limitUsd: 5,
        spentUsd: 0.1,
        reservedUsd: 1,
        fraction: 0.02,
      },
      {
        scope: 'person',
        subject: 'bob',
        period: 'day',
        limitUsd: 5,
        spentUsd: 0.25,
        reservedUsd: 0,
        fraction: 0.05,
      },
    ]);
    await g.release(held);
  });

  it('keeps the spend across a restart, and compacts the log on open', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-costs-'));
    const budgets = { global: { dailyUsd: 1, monthlyUsd: 2 }, perProvider: { openai: { monthlyUsd: 3 } } };
    // Last month's spend, which must not count any more.
    clock = Date.UTC(2026, 9, 31, 12);
    const before = await guard(budgets, { dataDir });
    await before.settle(await before.reserve(call(0.5)), spent(0.5));
    // Yesterday's and today's.
    clock = Date.UTC(2026, 10, 24, 12);
    await before.settle(await before.reserve(call(0.9)), spent(0.9));
    clock = NOON;
    for (let i = 0; i < 4; i += 1) await before.settle(await before.reserve(call(0.2)), spent(0.2));
    const held = await before.reserve(call(0.1));
    const expected = await before.snapshot();
    expect(expected.total).toMatchObject({ dayUsd: 0.8, monthUsd: 1.7, dayRequests: 4, monthRequests: 5 });
    // "Crash": the reservation is gone with the process.
    void held;
    await before.close();
    const linesBefore = readFileSync(join(dataDir, COSTS_LOG_FILE), 'utf8').trim().split('\n').length;

    const after = await guard(budgets, { dataDir });
    const snapshot = await after.snapshot();
    expect(snapshot).toEqual({
      ...expected,
      budgets: expected.budgets.map((b) => ({ ...b, reservedUsd: 0 })),
    });
    await refusal(after.reserve(call(0.21)));
    const linesAfter = readFileSync(join(dataDir, COSTS_LOG_FILE), 'utf8').trim().split('\n').length;
    expect(linesAfter).toBeLessThan(linesBefore);
    await after.close();

    // Compacted totals read back the same, and the next call appends after them.
    const again = await guard(budgets, { dataDir });
    await again.settle(await again.reserve(call(0.2)), spent(0.2));
    await again.close();
    const last = await guard(budgets, { dataDir });
    expect((await last.snapshot()).total).toMatchObject({ dayUsd: 1, monthUsd: 1.9, monthRequests: 6 });
  });

  it('fires each threshold once per scope, subject and period, even across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-costs-'));
    const events: ThresholdEvent[] = [];
    const budgets = { global: { dailyUsd: 1 }, perPerson: { dailyUsd: 10 }, warnAtFraction: 0.5 };
    const g = await guard(budgets, { dataDir, events });
    await g.settle(await g.reserve(call(0.4)), spent(0.4));
    expect(events).toEqual([]);
    await g.settle(await g.reserve(call(0.2)), spent(0.2));
    expect(events).toEqual([
      {
        scope: 'global',
        subject: 'global',
        period: 'day',
        bucket: '2026-11-25',
        level: 'warn',
        limitUsd: 1,
        spentUsd: 0.6,
      },
    ]);
    await g.settle(await g.reserve(call(0.1)), spent(0.1));
    expect(events).toHaveLength(1);
    // The estimate fit, the real cost passed the cap.
    await g.settle(await g.reserve(call(0.25)), spent(0.35));
    expect(events.map((e) => e.level)).toEqual(['warn', 'exhausted']);
    expect(events[1]).toMatchObject({ spentUsd: 1.05, limitUsd: 1 });
    await g.close();

    const events2: ThresholdEvent[] = [];
    const reopened = await guard(budgets, { dataDir, events: events2 });
    await reopened.settle(await reopened.reserve(call(0, { providerId: 'free' })), spent(0));
    expect(events2).toEqual([]);
    // A new day is a new period.
    clock += DAY;
    await reopened.settle(await reopened.reserve(call(0.9)), spent(0.9));
    expect(events2.map((e) => [e.level, e.bucket])).toEqual([['warn', '2026-11-26']]);
  });

  it('frees the budget of a reservation that was never settled once its deadline passes', async () => {
    const g = await guard({ global: { dailyUsd: 1 } }, { reservationTtlMs: 60_000 });
    await g.reserve(call(0.9)); // never settled
    await refusal(g.reserve(call(0.2)));
    clock += 59_000;
    await refusal(g.reserve(call(0.2)));
    clock += 1_000;
    expect((await g.snapshot()).budgets[0]?.reservedUsd).toBe(0);
    await expect(g.reserve(call(0.9))).resolves.toBeDefined();
  });

  it('rejects estimates and costs that are not money', async () => {
    const g = await guard({});
    await expect(g.reserve(call(Number.NaN))).rejects.toThrow(RangeError);
    await expect(g.reserve(call(-1))).rejects.toThrow(RangeError);
    const r = await g.reserve(call(0.1));
    await expect(g.settle(r, spent(Number.POSITIVE_INFINITY))).rejects.toThrow(RangeError);
  });
});
