import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { budgetConfigSchema } from '../../../../src/providers/budget/budget-config.js';
import { budgetRollUpJob } from '../../../../src/providers/budget/budget-roll-up-job.js';
import type { ReserveInput } from '../../../../src/providers/budget/cost-guard.js';
import { COSTS_LOG_FILE, LocalCostGuard } from '../../../../src/providers/budget/local-cost-guard.js';

const DAY = 86_400_000;
const NOV_25 = Date.UTC(2026, 10, 25, 12);
const DEC_2 = Date.UTC(2026, 11, 2, 12);

const call: ReserveInput = {
  providerId: 'openai',
  model: 'gpt-4o-mini',
  personId: 'alice',
  channel: 'http',
  estimatedUsd: 0.01,
};

/** The `bucket` of every record in the log (`call` records have none: they carry `at`). */
function logBuckets(dataDir: string): string[] {
  return readFileSync(join(dataDir, COSTS_LOG_FILE), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const record = JSON.parse(line.slice(9)) as { t: string; bucket?: string; at?: number };
      return record.bucket ?? `call@${new Date(record.at ?? 0).toISOString().slice(0, 10)}`;
    });
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('budget roll-up (local cost log)', () => {
  const open: LocalCostGuard[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((g) => g.close()));
  });

  async function guard(dataDir: string, clock: { now: number }) {
    const g = new LocalCostGuard({
      dataDir,
      budgets: budgetConfigSchema.parse({ global: { dailyUsd: 10, monthlyUsd: 100 } }),
      now: () => clock.now,
    });
    await g.open();
    open.push(g);
    return g;
  }

  it('folds the calls into totals of the current periods, and drops past periods while running', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-rollup-'));
    const clock = { now: NOV_25 };
    const g = await guard(dataDir, clock);
    for (let i = 0; i < 5; i += 1) {
      await g.settle(await g.reserve(call), { usd: 0.01, inputTokens: 10, outputTokens: 5 });
    }
    // The log's group commit lands a moment after the settles.
    await until(() => logBuckets(dataDir).filter((b) => b.startsWith('call@')).length === 5);

    const job = budgetRollUpJob(g, pino({ level: 'silent' }));
    await job.run(new AbortController().signal);
    // One total per counter (global, provider, person, channel x day, month), no call records.
    const folded = logBuckets(dataDir);
    expect(folded).toHaveLength(8);
    expect(new Set(folded)).toEqual(new Set(['2026-11-25', '2026-11']));
    expect((await g.snapshot()).total).toMatchObject({ dayRequests: 5, monthRequests: 5 });
    // Nothing new: nothing to rewrite.
    expect(await g.rollUp()).toBe(false);

    // Days later, in the next month: November's day and month are dropped without a restart.
    clock.now = DEC_2;
    await g.settle(await g.reserve(call), { usd: 0.02, inputTokens: 10, outputTokens: 5 });
    expect(await g.rollUp()).toBe(true);
    expect(new Set(logBuckets(dataDir))).toEqual(new Set(['2026-12-02', '2026-12']));

    // The rewritten log is the whole truth: a restart reads the same totals, counted once.
    await g.close();
    open.splice(open.indexOf(g), 1);
    const reopened = await guard(dataDir, clock);
    expect((await reopened.snapshot()).total).toMatchObject({
      dayRequests: 1,
      monthRequests: 1,
      dayUsd: 0.02,
      monthUsd: 0.02,
    });
    clock.now = DEC_2 + DAY;
    expect((await reopened.snapshot()).total).toMatchObject({ dayRequests: 0, monthRequests: 1 });
  });

  it('keeps every settle that lands while it rewrites the log', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-rollup-'));
    const clock = { now: NOV_25 };
    const g = await guard(dataDir, clock);
    await g.settle(await g.reserve(call), { usd: 0.01, inputTokens: 1, outputTokens: 1 });
    const reservations = await Promise.all([1, 2, 3].map(() => g.reserve(call)));
    const rolling = g.rollUp();
    for (const r of reservations) await g.settle(r, { usd: 0.01, inputTokens: 1, outputTokens: 1 });
    await rolling;
    await g.close();
    open.splice(open.indexOf(g), 1);
    const reopened = await guard(dataDir, clock);
    expect((await reopened.snapshot()).total).toMatchObject({ dayRequests: 4, monthRequests: 4 });
  });
});
