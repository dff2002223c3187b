import type { Redis } from 'ioredis';
import type { JobOutcome } from './job-scheduler.js';

const MAX_ERROR_CHARS = 500;

/**
 * The outcome of every cluster job, shared by every node: one hash, `<keyPrefix>:jobs:outcomes`,
 * with fields `<job>|lastRunAt`, `|lastNode`, `|lastOutcome`, `|lastError`, `|runs` and
 * `|consecutiveFailures`. Each record is one MULTI, so the counts and the fields they go with
 * change together.
 */
export class RedisJobOutcomes {
  readonly key: string;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
  ) {
    this.key = `${keyPrefix}:jobs:outcomes`;
  }

  async recordSuccess(name: string, node: string, at: number): Promise<void> {
    const f = field(name);
    await exec(
      this.redis
        .multi()
        .hset(this.key, ...lastRun(f, at, node, 'ok'), f('consecutiveFailures'), 0)
        .hdel(this.key, f('lastError'))
        .hincrby(this.key, f('runs'), 1),
    );
  }

  /** Returns the failed runs in a row, this one included. */
  async recordFailure(name: string, node: string, at: number, error: string): Promise<number> {
    const f = field(name);
    const results = await exec(
      this.redis
        .multi()
        .hset(this.key, ...lastRun(f, at, node, 'failed'), f('lastError'), error.slice(0, MAX_ERROR_CHARS))
        .hincrby(this.key, f('runs'), 1)
        .hincrby(this.key, f('consecutiveFailures'), 1),
    );
    return Number(results[2]);
  }

  async read(names: readonly string[]): Promise<Omit<JobOutcome, 'scope'>[]> {
    if (names.length === 0) return [];
    const all = await this.redis.hgetall(this.key);
    return names.map((name) => {
      const get = (key: string) => all[`${name}|${key}`];
      const outcome: Omit<JobOutcome, 'scope'> = {
        name,
        runs: Number(get('runs') ?? 0),
        consecutiveFailures: Number(get('consecutiveFailures') ?? 0),
      };
      const lastRunAt = get('lastRunAt');
      if (lastRunAt !== undefined) outcome.lastRunAt = Number(lastRunAt);
      const lastNode = get('lastNode');
      if (lastNode !== undefined) outcome.lastNode = lastNode;
      const lastOutcome = get('lastOutcome');
      if (lastOutcome === 'ok' || lastOutcome === 'failed') outcome.lastOutcome = lastOutcome;
      const lastError = get('lastError');
      if (lastError !== undefined) outcome.lastError = lastError;
      return outcome;
    });
  }
}

function field(name: string): (key: string) => string {
  return (key) => `${name}|${key}`;
}

async function exec(multi: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const results = await multi.exec();
  if (!results) throw new Error('a job outcome transaction was discarded');
  const failed = results.find(([error]) => error);
  if (failed?.[0]) throw failed[0];
  return results.map(([, value]) => value);
}

/** The hash fields every finished run sets: when, where, and how it went. */
function lastRun(
  f: (name: string) => string,
  at: number,
  node: string,
  outcome: 'ok' | 'failed',
): (string | number)[] {
  return [f('lastRunAt'), at, f('lastNode'), node, f('lastOutcome'), outcome];
}
