import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BudgetConfigInput,
  budgetConfigSchema,
} from '../../../../src/providers/budget/budget-config.js';
import { BudgetExceededError, type ReserveInput } from '../../../../src/providers/budget/cost-guard.js';
import { type ThresholdEvent, toMicros } from '../../../../src/providers/budget/ledger.js';
import { RedisCostGuard } from '../../../../src/providers/budget/redis-cost-guard.js';
import { startRedis, type TestRedis } from '../../../support/redis-server.js';

const call = (estimatedUsd: number, extra: Partial<ReserveInput> = {}): ReserveInput => ({
  providerId: 'openai',
  model: 'gpt-4o-mini',
  personId: 'alice',
  channel: 'telegram',
  estimatedUsd,
  ...extra,
});
const spent = (usd: number) => ({ usd, inputTokens: 1000, outputTokens: 100 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function refusal(promise: Promise<unknown>): Promise<BudgetExceededError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BudgetExceededError);
  return error as BudgetExceededError;
}

describe('RedisCostGuard on a real redis-server', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** A separate connection per guard, as on separate servers. */
  function connect(): Redis {
    const client = new Redis({ port: redis.port, maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  }

  /** Guards that share one key prefix: one "cluster" per test. */
  function cluster(
    budgets: BudgetConfigInput,
    options: { now?: () => number; reservationTtlMs?: number; events?: ThresholdEvent[] } = {},
  ) {
    const keyPrefix = `budget-test-${++prefixes}`;
    return () =>
      new RedisCostGuard({
        redis: connect(),
        keyPrefix,
        budgets: budgetConfigSchema.parse(budgets),
        ...(options.now ? { now: options.now } : {}),
        ...(options.reservationTtlMs ? { reservationTtlMs: options.reservationTtlMs } : {}),
        ...(options.events ? { onThreshold: (e: ThresholdEvent) => options.events?.push(e) } : {}),
      });
  }

  it('never lets 50 concurrent calls from two nodes pass the cap by more than the estimation error in flight', async () => {
    const CAP_USD = 1;
    const cap = toMicros(CAP_USD);
    const events: ThresholdEvent[] = [];
    const node = cluster({ global: { dailyUsd: CAP_USD } }, { events });
    const guards = [node(), node()];

    // A single event counter orders what this process saw; Redis runs each script at some
    // moment between its command being issued and its reply arriving.
    let seq = 0;
    interface Flow {
      estimate: number;
      actual: number;
      reserveIssued: number;
      reserveReplied: number;
      settleReplied: number;
    }
    const accepted: Flow[] = [];
    const refused: { estimate: number; reserveIssued: number; reserveReplied: number; error: unknown }[] = [];
    // Deterministic pseudo-random numbers, so a failure can be replayed.
    let state = 12345;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };

    const flow = async (i: number) => {
      const guard = guards[i % 2] as RedisCostGuard;
      // Six attempts each, going on after a refusal: a call that cost less than its estimate
      // frees budget for later ones, so reservations keep interleaving with settles. Demand
      // (about 50 x 6 x $0.04) is many times the cap.
      for (let attempt = 0; attempt < 6; attempt += 1) {
        const estimate = toMicros(0.02 + random() * 0.04);
        // The real cost lands between half the estimate and 60% above it.
        const actual = Math.round(estimate * (0.5 + random() * 1.1));
        const reserveIssued = ++seq;
        let reservation: Awaited<ReturnType<RedisCostGuard['reserve']>>;
        try {
          reservation = await guard.reserve(call(estimate / 1e6, { personId: `p${i}` }));
        } catch (error) {
          refused.push({ estimate, reserveIssued, reserveReplied: ++seq, error });
          await sleep(random() * 10);
          continue;
        }
        const reserveReplied = ++seq;
        await sleep(random() * 15); // the provider call
        await guard.settle(reservation, { usd: actual / 1e6, inputTokens: 500, outputTokens: 200 });
        accepted.push({ estimate, actual, reserveIssued, reserveReplied, settleReplied: ++seq });
      }
    };
    await Promise.all(Array.from({ length: 50 }, (_, i) => flow(i)));

    const snapshot = await guards[0]?.snapshot();
    const budget = snapshot?.budgets.find((b) => b.scope === 'global' && b.period === 'day');
    const spentMicros = toMicros(budget?.spentUsd ?? Number.NaN);
    // The ledger holds exactly what was settled, and nothing is left reserved.
    expect(spentMicros).toBe(accepted.reduce((sum, f) => sum + f.actual, 0));
    expect(budget?.reservedUsd).toBe(0);
    expect(snapshot?.total.dayRequests).toBe(accepted.length);

    /*
     * THE BOUND. Let k be the accepted reservation Redis ran last, at moment T. Just after it,
     * spent + reserved <= cap, where reserved is the sum of the estimates of every call not yet
     * settled at T (F, k included). Nothing is reserved after T, so the final spend is
     *   spent(T) + sum over F of actual = spent(T) + reserved(T) + sum over F of (actual - estimate)
     *   <= cap + sum over F of max(0, actual - estimate).
     * We cannot see T, only that it lies between k's reserve being issued and its reply. So:
     * - k is among the accepted calls whose reserve reply came after every accepted reserve
     *   was issued (K below);
     * - every call in F had its settle reply after k's reserve was issued.
     * The bound is the largest such sum over the candidates for k.
     */
    const lastIssued = Math.max(...accepted.map((f) => f.reserveIssued));
    const candidates = accepted.filter((k) => k.reserveReplied > lastIssued);
    expect(candidates.length).toBeGreaterThan(0);
    const overrunInFlight = Math.max(
      ...candidates.map((k) =>
        accepted
          .filter((j) => j.settleReplied > k.reserveIssued)
          .reduce((sum, j) => sum + Math.max(0, j.actual - j.estimate), 0),
      ),
    );
    expect(spentMicros).toBeLessThanOrEqual(cap + overrunInFlight);
    // The bound is tighter than the naive one (every overrun of the whole run).
    const allOverruns = accepted.reduce((sum, f) => sum + Math.max(0, f.actual - f.estimate), 0);
    expect(overrunInFlight).toBeLessThanOrEqual(allOverruns);

    // Refusals happened, each naming the global daily cap...
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.error).toBeInstanceOf(BudgetExceededError);
      expect(r.error).toMatchObject({ scope: 'global', period: 'day', limitUsd: CAP_USD });
    }
    // ...and only once the cap was reached: when Redis refused r, spent + reserved + r's
    // estimate was over the cap, and spent + reserved then was at most the larger of estimate
    // and actual of every call whose reserve was issued before r's reply.
    for (const r of refused) {
      const couldHaveCounted = accepted
        .filter((j) => j.reserveIssued < r.reserveReplied)
        .reduce((sum, j) => sum + Math.max(j.estimate, j.actual), 0);
      expect(couldHaveCounted + r.estimate).toBeGreaterThan(cap);
    }
    // Thresholds fire once for the whole cluster, not once per node.
    const warns = events.filter((e) => e.level === 'warn');
    const exhausted = events.filter((e) => e.level === 'exhausted');
    expect(warns).toHaveLength(spentMicros >= cap * 0.8 ? 1 : 0);
    expect(exhausted).toHaveLength(spentMicros >= cap ? 1 : 0);
  });

  it('frees the budget held by a process that died between reserve and settle (injected clock)', async () => {
    let clock = Date.now();
    const node = cluster({ global: { dailyUsd: 1 } }, { now: () => clock, reservationTtlMs: 60_000 });
    const crashed = node();
    const survivor = node();
    await crashed.reserve(call(0.9));
    // The "crash": its connection is gone, and it never settles or releases.
    clients[0]?.disconnect();
    await refusal(survivor.reserve(call(0.2)));
    clock += 59_999;
    await refusal(survivor.reserve(call(0.2)));
    clock += 1;
    const r = await survivor.reserve(call(0.9));
    expect((await survivor.snapshot()).budgets[0]).toMatchObject({ spentUsd: 0, reservedUsd: 0.9 });
    await survivor.settle(r, spent(0.5));
    expect((await survivor.snapshot()).budgets[0]).toMatchObject({ spentUsd: 0.5, reservedUsd: 0 });
  });

  it('frees the budget held by a dead process in real time', async () => {
    const node = cluster({ global: { dailyUsd: 1 } }, { reservationTtlMs: 300 });
    const crashed = node();
    const survivor = node();
    await crashed.reserve(call(0.9));
    clients[0]?.disconnect();
    await refusal(survivor.reserve(call(0.2)));
    await sleep(350);
    await expect(survivor.reserve(call(0.9))).resolves.toBeDefined();
  });

  it('refuses by scope and period, and holds reservations until settle or release', async () => {
    const node = cluster({
      global: { dailyUsd: 10, monthlyUsd: 100 },
      perProvider: { openai: { dailyUsd: 2 } },
      perPerson: { dailyUsd: 1, monthlyUsd: 0.5 },
    });
    const a = node();
    const b = node();
    expect(await refusal(a.reserve(call(0.6)))).toMatchObject({
      scope: 'person',
      period: 'month',
      subject: 'alice',
      limitUsd: 0.5,
    });
    expect(await refusal(a.reserve(call(3, { personId: 'bob' })))).toMatchObject({
      scope: 'provider',
      period: 'day',
      subject: 'openai',
    });
    expect(await refusal(a.reserve(call(11, { providerId: 'x' })))).toMatchObject({ scope: 'global' });

    // A reservation on one node holds budget on the other (no person: only the provider cap binds).
    const solo = (usd: number) => call(usd, { personId: undefined });
    const held = await a.reserve(solo(1.5));
    expect(await refusal(b.reserve(solo(0.6)))).toMatchObject({ scope: 'provider' });
    await b.release(held);
    const r = await b.reserve(solo(1.5));
    await a.settle(r, spent(1.2));
    await b.reserve(solo(0.8)); // exactly up to the cap
    await refusal(a.reserve(solo(0.01)));
    // A refused reservation changed nothing.
    const s = await a.snapshot();
    expect(s.budgets.find((x) => x.scope === 'provider')).toMatchObject({
      spentUsd: 1.2,
      reservedUsd: 0.8,
      fraction: 0.6,
    });
    expect(s.budgets.find((x) => x.scope === 'global' && x.period === 'day')).toMatchObject({
      spentUsd: 1.2,
      reservedUsd: 0.8,
    });
    // Free calls always pass.
    await expect(a.reserve(call(0, { personId: 'erin' }))).resolves.toBeDefined();
  });

  it('resets the daily budget at UTC midnight but not the monthly one', async () => {
    let clock = Date.UTC(2030, 0, 31, 23, 0);
    const node = cluster({ global: { dailyUsd: 1, monthlyUsd: 1.5 } }, { now: () => clock });
    const g = node();
    await g.settle(await g.reserve(call(0.9)), spent(0.9));
    await refusal(g.reserve(call(0.2)));
    // Reserved before midnight, settled after: charged to the day it was reserved in.
    const late = await g.reserve(call(0.1));
    clock = Date.UTC(2030, 1, 1, 0, 0, 1);
    expect((await g.snapshot()).total).toMatchObject({ dayUsd: 0, monthUsd: 0 });
    await g.settle(late, spent(0.1));
    clock = Date.UTC(2030, 0, 31, 23, 30);
    expect((await g.snapshot()).total).toMatchObject({ dayUsd: 1, monthUsd: 1, dayRequests: 2 });
    // Back to the new month: both reset.
    clock = Date.UTC(2030, 1, 1, 1);
    await g.settle(await g.reserve(call(0.9)), spent(0.9));
    // Next day in the same month: the day resets, the month does not.
    clock = Date.UTC(2030, 1, 2, 1);
    expect((await g.snapshot()).total).toMatchObject({ dayUsd: 0, monthUsd: 0.9 });
    expect(await refusal(g.reserve(call(0.7)))).toMatchObject({ period: 'month' });
    await expect(g.reserve(call(0.6))).resolves.toBeDefined();
  });

  it('keeps the ledger per provider, person and channel, shared by every node', async () => {
    const node = cluster({ perProvider: { openai: { monthlyUsd: 10 } } });
    const a = node();
    const b = node();
    await a.settle(await a.reserve(call(0.1)), { usd: 0.1, inputTokens: 1000, outputTokens: 200 });
    await b.settle(
      await b.reserve(call(0.3, { providerId: 'anthropic', personId: 'bob', channel: 'slack' })),
      {
        usd: 0.25,
        inputTokens: 3000,
        outputTokens: 400,
      },
    );
    await b.settle(await b.reserve(call(0.2, { personId: undefined, channel: undefined })), {
      usd: 0.05,
      inputTokens: 10,
      outputTokens: 20,
    });
    const s = await a.snapshot();
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
    expect(s.providers.openai).toMatchObject({ dayUsd: 0.15, dayRequests: 2, monthInputTokens: 1010 });
    expect(s.providers.anthropic).toMatchObject({ dayUsd: 0.25, monthOutputTokens: 400 });
    expect(Object.keys(s.persons)).toEqual(['alice', 'bob']);
    expect(s.channels).toMatchObject({ slack: { dayUsd: 0.25 }, telegram: { dayUsd: 0.1 } });
    expect(s.budgets).toEqual([
      {
        scope: 'provider',
        subject: 'openai',
        period: 'month',
        limitUsd: 10,
        spentUsd: 0.15,
        reservedUsd: 0,
        fraction: 0.015,
      },
    ]);
  });

  it('settles a call no cap held without touching reservations, and frees one whose cap was removed since', async () => {
    const keyPrefix = `budget-test-${++prefixes}`;
    const guard = (budgets: BudgetConfigInput) =>
      new RedisCostGuard({ redis: connect(), keyPrefix, budgets: budgetConfigSchema.parse(budgets) });
    const capped = guard({ perProvider: { openai: { dailyUsd: 1 } } });
    const uncapped = guard({});

    // Bob's call meets no cap: it holds nothing, so its release and settle free nothing either.
    const bobs = await capped.reserve(
      call(0.4, { providerId: 'anthropic', personId: 'bob', channel: 'slack' }),
    );
    expect(bobs.holdsNothing).toBe(true);
    const alices = await capped.reserve(call(0.7));
    expect(alices.holdsNothing).toBeUndefined();
    await capped.release(bobs);
    await capped.settle(bobs, spent(0.3));
    const before = await capped.snapshot();
    expect(before.persons.bob).toMatchObject({ dayUsd: 0.3, dayRequests: 1 });
    expect(before.channels.slack).toMatchObject({ dayUsd: 0.3 });
    expect(before.budgets).toMatchObject([{ subject: 'openai', spentUsd: 0, reservedUsd: 0.7 }]);
    expect(await refusal(capped.reserve(call(0.4)))).toMatchObject({ subject: 'openai' });

    // A node whose config no longer caps OpenAI settles Alice's call: what it held is still freed.
    await uncapped.settle(alices, spent(0.2));
    const client = connect();
    const [dayHash] = await client.keys(`${keyPrefix}:cost:????-??-??:h:p:openai`);
    expect(await client.hmget(dayHash as string, 'spent', 'reserved')).toEqual(['200000', '0']);
    await expect(capped.reserve(call(0.8))).resolves.toMatchObject({ input: { providerId: 'openai' } });
  });

  it('fires each threshold once across the cluster, per period', async () => {
    let clock = Date.now();
    const events: ThresholdEvent[] = [];
    const node = cluster({ perPerson: { dailyUsd: 1 }, warnAtFraction: 0.5 }, { now: () => clock, events });
    const a = node();
    const b = node();
    await a.settle(await a.reserve(call(0.3)), spent(0.3));
    await b.settle(await b.reserve(call(0.3)), spent(0.3));
    await a.settle(await a.reserve(call(0.1)), spent(0.1));
    expect(events).toMatchObject([{ scope: 'person', subject: 'alice', level: 'warn', spentUsd: 0.6 }]);
    await b.settle(await b.reserve(call(0.3)), spent(0.45));
    await a.settle(await a.reserve(call(0, { providerId: 'free' })), spent(0));
    expect(events.map((e) => e.level)).toEqual(['warn', 'exhausted']);
    expect(events[1]).toMatchObject({ limitUsd: 1, spentUsd: 1.15, period: 'day' });
    clock += 24 * 3_600_000;
    await b.settle(await b.reserve(call(0.6)), spent(0.6));
    expect(events.map((e) => e.level)).toEqual(['warn', 'exhausted', 'warn']);
  });

  it('stores money as integer micro-dollars and expires keys after their period', async () => {
    const node = cluster({ global: { dailyUsd: 1 } });
    const g = node();
    await g.settle(await g.reserve(call(0.1234567)), spent(0.1 + 0.2));
    const client = connect();
    const keys = await client.keys(`budget-test-${prefixes}:cost:*`);
    const dayHash = keys.find((k) => /:cost:\d{4}-\d{2}-\d{2}:h:g:global$/.test(k)) as string;
    const monthHash = keys.find((k) => /:cost:\d{4}-\d{2}:h:g:global$/.test(k)) as string;
    expect(await client.hget(dayHash, 'spent')).toBe('300000');
    expect(await client.hget(dayHash, 'reserved')).toBe('0');
    const now = Date.now();
    // The TTL was computed from the guard's clock a moment before PEXPIRE ran; on a loaded machine
    // that moment can outlast the gap between \`now\` and PTTL, so the upper bound allows a second.
    const slack = 1000;
    const endOfDay = new Date(now).setUTCHours(24, 0, 0, 0);
    const dayTtl = await client.pttl(dayHash);
    expect(dayTtl).toBeGreaterThan(endOfDay - now);
    expect(dayTtl).toBeLessThanOrEqual(endOfDay - now + 24 * 3_600_000 + slack);
    const endOfMonth = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() + 1, 1);
    const monthTtl = await client.pttl(monthHash);
    expect(monthTtl).toBeGreaterThan(endOfMonth - now);
    expect(monthTtl).toBeLessThanOrEqual(endOfMonth - now + 24 * 3_600_000 + slack);
    // The index sets naming the period's counters expire with them.
    const [dayIndex, monthIndex] = [dayHash, monthHash].map((k) => k.replace(/:h:g:global$/, ':idx'));
    expect(await client.smembers(dayIndex as string)).toEqual(
      expect.arrayContaining(['g:global', 'u:alice']),
    );
    expect(Math.abs((await client.pttl(dayIndex as string)) - dayTtl)).toBeLessThanOrEqual(slack);
    expect(Math.abs((await client.pttl(monthIndex as string)) - monthTtl)).toBeLessThanOrEqual(slack);
  });
});
