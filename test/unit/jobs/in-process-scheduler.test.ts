import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InProcessScheduler } from '../../../src/jobs/in-process-scheduler.js';

const logger = pino({ level: 'silent' });

describe('InProcessScheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs a job every period and records its outcome', async () => {
    const scheduler = new InProcessScheduler(logger, { nodeId: 'here' });
    let runs = 0;
    scheduler.add({
      name: 'tick',
      everyMs: 1000,
      run: async () => {
        runs += 1;
      },
    });
    await vi.advanceTimersByTimeAsync(3500);
    expect(runs).toBe(3);
    expect(await scheduler.outcomes()).toEqual([
      {
        name: 'tick',
        scope: 'node',
        everyMs: 1000,
        runs: 3,
        lastRunAt: Date.now() - 500,
        lastNode: 'here',
        lastOutcome: 'ok',
        consecutiveFailures: 0,
      },
    ]);
    await scheduler.stop();
  });

  it('skips a turn while the previous run is still running', async () => {
    const scheduler = new InProcessScheduler(logger);
    let started = 0;
    scheduler.add({
      name: 'slow',
      everyMs: 1000,
      run: async () => {
        started += 1;
        await new Promise((resolve) => setTimeout(resolve, 2500));
      },
    });
    await vi.advanceTimersByTimeAsync(3100);
    // Runs start at 1 s and at 4 s: the turns at 2 s and 3 s fell inside the first run.
    expect(started).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(started).toBe(2);
    const stopped = scheduler.stop();
    await vi.advanceTimersByTimeAsync(2500);
    await stopped;
  });

  it('counts failed runs in a row and alerts at the threshold, until a run succeeds', async () => {
    const alerts: [string, string, number][] = [];
    const scheduler = new InProcessScheduler(logger, {
      alertAfterFailures: 2,
      onAlert: (name, error, failures) => alerts.push([name, error.message, failures]),
    });
    let fail = true;
    scheduler.add({
      name: 'flaky',
      everyMs: 1000,
      run: async () => {
        if (fail) throw new Error('nope');
      },
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(alerts).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(alerts).toEqual([
      ['flaky', 'nope', 2],
      ['flaky', 'nope', 3],
    ]);
    expect((await scheduler.outcomes())[0]).toMatchObject({
      lastOutcome: 'failed',
      lastError: 'nope',
      consecutiveFailures: 3,
      runs: 3,
    });
    fail = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect((await scheduler.outcomes())[0]).toMatchObject({
      lastOutcome: 'ok',
      consecutiveFailures: 0,
      runs: 4,
    });
    expect((await scheduler.outcomes())[0]).not.toHaveProperty('lastError');
    await scheduler.stop();
  });

  it('aborts the signal of a running job on stop and waits for it', async () => {
    const scheduler = new InProcessScheduler(logger);
    let aborted = false;
    let finished = false;
    scheduler.add({
      name: 'waits',
      everyMs: 1000,
      run: (signal) =>
        new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            setTimeout(() => {
              finished = true;
              resolve();
            }, 10);
          });
        }),
    });
    await vi.advanceTimersByTimeAsync(1000);
    const stopped = scheduler.stop();
    expect(aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    await stopped;
    expect(finished).toBe(true);
  });

  it('stops running a removed job', async () => {
    const scheduler = new InProcessScheduler(logger);
    let runs = 0;
    scheduler.add({
      name: 'gone',
      everyMs: 1000,
      run: async () => {
        runs += 1;
      },
    });
    await vi.advanceTimersByTimeAsync(1000);
    scheduler.remove('gone');
    await vi.advanceTimersByTimeAsync(3000);
    expect(runs).toBe(1);
    expect(await scheduler.outcomes()).toEqual([]);
    await scheduler.stop();
  });
});
