import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * KEYS[1] the lock, ARGV[1] the holder's token, ARGV[2] TTL (ms)
 * Returns 1 when the lock is still this holder's and now lives ARGV[2] ms more, else 0.
 */
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/**
 * KEYS[1] the lock, ARGV[1] the holder's token
 * Returns 1 when this holder's lock was deleted, 0 when it was no longer theirs.
 */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export interface HeldRunLock {
  /** Aborted when the lock is lost (it expired, and another node may hold it now). */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

export interface RedisRunLockOptions {
  redis: Redis;
  keyPrefix: string;
  /** How long a lock lives without renewal; it is renewed every third of it. */
  ttlMs: number;
  logger: Logger;
}

/**
 * One run of a job at a time across every node: a key per job, taken with SET NX and a TTL,
 * renewed while the run lasts, deleted (only by its holder) when it ends. A node that dies
 * mid-run frees the job after `ttlMs`.
 */
export class RedisRunLock {
  constructor(private readonly options: RedisRunLockOptions) {}

  /** The lock, or undefined when another run of the job holds it. */
  async acquire(name: string, holder: string): Promise<HeldRunLock | undefined> {
    const { redis, ttlMs, logger } = this.options;
    const key = `${this.options.keyPrefix}:jobs:lock:${name}`;
    const token = `${holder}:${randomUUID()}`;
    if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return undefined;
    const lost = new AbortController();
    let renewedAt = Date.now();
    const timer = setInterval(
      async () => {
        try {
          const renewStarted = Date.now();
          if (Number(await redis.eval(RENEW_SCRIPT, 1, key, token, ttlMs)) === 1) {
            renewedAt = renewStarted;
            return;
          }
          lost.abort(new Error(`the run lock of job "${name}" expired`));
        } catch (error) {
          // Redis is away: the lock still holds until its TTL, counted from the last renewal.
          logger.warn({ job: name, err: (error as Error).message }, 'could not renew a job run lock');
          if (Date.now() - renewedAt >= ttlMs) {
            lost.abort(new Error(`the run lock of job "${name}" could not be renewed`));
          }
        }
        if (lost.signal.aborted) clearInterval(timer);
      },
      Math.max(1, Math.floor(ttlMs / 3)),
    );
    timer.unref();
    return {
      signal: lost.signal,
      release: async () => {
        clearInterval(timer);
        await redis.eval(RELEASE_SCRIPT, 1, key, token).catch((error: unknown) => {
          logger.warn({ job: name, err: (error as Error).message }, 'could not release a job run lock');
        });
      },
    };
  }
}
