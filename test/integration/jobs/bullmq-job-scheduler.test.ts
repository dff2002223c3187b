import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BullMqJobScheduler,
  type BullMqJobSchedulerOptions,
} from '../../../src/jobs/bullmq-job-scheduler.js';
import type { JobDefinition, JobRun } from '../../../src/jobs/job-scheduler.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';

const logger = pino({ level: 'silent' });

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

let redis: TestRedis;
const clients: Redis[] = [];
const schedulers: BullMqJobScheduler[] = [];
let counter = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.stop()));
  for (const client of clients.splice(0)) client.disconnect();
});
afterAll(async () => {
  await redis.stop();
});

/** Two "nodes": each its own scheduler and Redis client, on one Redis and one key prefix. */
function nodes(
  count: number,
  options: (nodeId: string) => Partial<BullMqJobSchedulerOptions> = () => ({}),
): { prefix: string; schedulers: BullMqJobScheduler[] } {
  const prefix = `jobs${++counter}`;
  const made: BullMqJobScheduler[] = [];
  for (let i = 0; i < count; i += 1) {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 2 });
    clients.push(client);
    const nodeId = `node-${String.fromCharCode(97 + i)}`;
    const scheduler = new BullMqJobScheduler({
      connection: { host: '127.0.0.1', port: redis.port },
      redis: client,
      keyPrefix: prefix,
      nodeId,
      logger,
      backoffMs: 20,
      ...options(nodeId),
    });
    schedulers.push(scheduler);
    made.push(scheduler);
  }
  return { prefix, schedulers: made };
}

/** A job that counts its runs and how many of them overlap, across every node that runs it. */
function countingJob(everyMs: number, runMs: number) {
  const runs: JobRun[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const definition: JobDefinition = {
    name: 'counted',
    everyMs,
    run: async (_signal, run) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await sleep(runMs);
        if (run) runs.push(run);
      } finally {
        inFlight -= 1;
      }
    },
  };
  return {
    definition,
    runs,
    get maxInFlight() {
      return maxInFlight;
    },
  };
}

describe('BullMqJobScheduler on two nodes', () => {
  it('runs a job once per period between them, never two runs at once, with outcomes on both', async () => {
    const {
      schedulers: [a, b],
    } = nodes(2);
    const job = countingJob(100, 30);
    a?.add(job.definition);
    b?.add(job.definition);
    await Promise.all([a?.start(), b?.start()]);
    await until(() => job.runs.length >= 8);
    await Promise.all([a?.stop(), b?.stop()]);

    const slots = job.runs.map((r) => r.scheduledAt);
    expect(new Set(slots).size).toBe(slots.length);
    expect(job.maxInFlight).toBe(1);
    expect(job.runs.every((r) => r.attempt === 1)).toBe(true);
    for (const run of job.runs) expect(['node-a', 'node-b']).toContain(run.node);

    const [fromA, fromB] = await Promise.all([a?.outcomes(), b?.outcomes()]);
    expect(fromA).toEqual(fromB);
    expect(fromA).toEqual([
      expect.objectContaining({
        name: 'counted',
        scope: 'cluster',
        runs: job.runs.length,
        lastOutcome: 'ok',
        consecutiveFailures: 0,
        lastNode: job.runs.at(-1)?.node,
      }),
    ]);
  });

  it('skips a turn while the previous run still runs, on whichever node it falls', async () => {
    const {
      schedulers: [a, b],
    } = nodes(2);
    // Each run lasts several periods, so later periods come due while it runs.
    const job = countingJob(40, 150);
    a?.add(job.definition);
    b?.add(job.definition);
    await Promise.all([a?.start(), b?.start()]);
    await until(() => job.runs.length >= 4);
    await Promise.all([a?.stop(), b?.stop()]);
    expect(job.maxInFlight).toBe(1);
    const slots = job.runs.map((r) => r.scheduledAt);
    expect(new Set(slots).size).toBe(slots.length);
  });

  it('retries a failed run with back-off, and a run that succeeds on a retry counts as ok', async () => {
    const {
      schedulers: [a, b],
    } = nodes(2, () => ({ attempts: 3 }));
    const tries: JobRun[] = [];
    const definition: JobDefinition = {
      name: 'flaky',
      everyMs: 60_000,
      run: async (_signal, run) => {
        if (run) tries.push(run);
        if ((run?.attempt ?? 1) < 3) throw new Error(`try ${run?.attempt} failed`);
      },
    };
    a?.add(definition);
    b?.add(definition);
    await Promise.all([a?.start(), b?.start()]);
    await until(async () => (await a?.outcomes())?.[0]?.runs === 1);
    expect(tries.map((t) => t.attempt)).toEqual([1, 2, 3]);
    expect(new Set(tries.map((t) => t.scheduledAt)).size).toBe(1);
    expect(await b?.outcomes()).toEqual([
      expect.objectContaining({ name: 'flaky', runs: 1, lastOutcome: 'ok', consecutiveFailures: 0 }),
    ]);
  });

  it('raises the alert once a job has failed N runs in a row, once per count across the nodes', async () => {
    const alerts: { node: string; name: string; message: string; failures: number }[] = [];
    const { schedulers: both } = nodes(2, (node) => ({
      attempts: 2,
      alertAfterFailures: 3,
      onAlert: (name, error, failures) => alerts.push({ node, name, message: error.message, failures }),
    }));
    const tries: JobRun[] = [];
    const definition: JobDefinition = {
      name: 'broken',
      everyMs: 50,
      run: async (signal, run) => {
        // A try that starts while its node stops is not a failed run: leave it out of the count.
        if (run && !signal.aborted) tries.push(run);
        throw new Error('the disk is full');
      },
    };
    for (const scheduler of both) scheduler.add(definition);
    await Promise.all(both.map((s) => s.start()));
    await until(() => alerts.length >= 1);
    await Promise.all(both.map((s) => s.stop()));

    expect(alerts[0]).toMatchObject({ name: 'broken', message: 'the disk is full', failures: 3 });
    for (const alert of alerts) expect(['node-a', 'node-b']).toContain(alert.node);
    // No alert before the third failed run in a row, and each count alerted once across the nodes.
    const counts = alerts.map((alert) => alert.failures);
    expect(Math.min(...counts)).toBe(3);
    expect(new Set(counts).size).toBe(counts.length);
    // Every run that counted as failed was tried twice: attempt 2 of a slot follows attempt 1.
    const bySlot = new Map<number, number[]>();
    for (const t of tries) bySlot.set(t.scheduledAt, [...(bySlot.get(t.scheduledAt) ?? []), t.attempt]);
    const failedRuns = [...bySlot.values()].filter((attempts) => attempts.includes(2));
    expect(failedRuns.length).toBeGreaterThanOrEqual(3);
    for (const attempts of failedRuns) expect(attempts).toEqual([1, 2]);
    const [outcome] = (await both[1]?.outcomes()) ?? [];
    expect(outcome).toMatchObject({ lastOutcome: 'failed', lastError: 'the disk is full' });
    expect(outcome?.consecutiveFailures).toBe(failedRuns.length);
    expect(outcome?.runs).toBe(failedRuns.length);
  });

  it('aborts a running job when its node stops, and does not count it as a failed run', async () => {
    const {
      schedulers: [a],
    } = nodes(1);
    let started = false;
    let sawAbort = false;
    a?.add({
      name: 'long',
      everyMs: 60_000,
      run: (signal) =>
        new Promise<void>((_resolve, reject) => {
          started = true;
          signal.addEventListener('abort', () => {
            sawAbort = true;
            reject(signal.reason);
          });
        }),
    });
    await a?.start();
    await until(() => started);
    await a?.stop();
    expect(sawAbort).toBe(true);
    expect(await a?.outcomes()).toEqual([expect.objectContaining({ name: 'long', runs: 0 })]);
  });

  it('refuses a bad job name or period', () => {
    const {
      schedulers: [a],
    } = nodes(1);
    expect(() => a?.add({ name: 'has a space', everyMs: 1000, run: async () => {} })).toThrow(RangeError);
    expect(() => a?.add({ name: 'ok', everyMs: 0, run: async () => {} })).toThrow(RangeError);
  });
});
