import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { type DurableQueue, type JobHandler, type QueueOptions, retryDelayMs } from './durable-queue.js';

export interface BullMqDurableQueueOptions extends QueueOptions {
  name: string;
  redisUrl: string;
  /** BullMQ's key prefix; the agent's `redis.keyPrefix`, so several agents can share one Redis. */
  prefix: string;
  logger: Logger;
  /** How long a finished job id is kept, so adding it again does nothing. Default one day. */
  dedupeMs?: number;
}

/**
 * A durable queue on BullMQ, shared by every process pointed at the same Redis: when one server
 * dies mid-job, BullMQ's stalled-job check hands the job to a worker on the other. The job id is
 * the caller's id, so adding it twice does nothing while the job (or its completed record) is
 * kept. A retry the handler asks for moves the job to the delayed set (no attempt is "failed").
 */
export class BullMqDurableQueue<T> implements DurableQueue<T> {
  readonly name: string;
  private readonly queue: Queue;
  private worker: Worker | undefined;

  constructor(private readonly options: BullMqDurableQueueOptions) {
    this.name = options.name;
    this.queue = new Queue(options.name, {
      // Fail an add quickly while Redis is away: the platform then delivers the event again.
      connection: { ...redisOptions(options.redisUrl), enableOfflineQueue: false, maxRetriesPerRequest: 1 },
      prefix: options.prefix,
    });
    this.queue.on('error', (error) =>
      options.logger.warn({ queue: this.name, err: error.message }, 'queue error'),
    );
  }

  async add(id: string, data: T): Promise<void> {
    const dedupeSeconds = Math.ceil((this.options.dedupeMs ?? 86_400_000) / 1000);
    await this.queue.add(this.name, data, {
      jobId: toJobId(id),
      removeOnComplete: { age: dedupeSeconds },
      removeOnFail: { age: dedupeSeconds },
      // Failures are handled by the handler's own retry decisions; a thrown error retries too.
      attempts: 1_000_000,
      backoff: { type: 'exponential', delay: this.options.retryBaseMs },
    });
  }

  async start(handler: JobHandler<T>): Promise<void> {
    this.worker = new Worker(
      this.name,
      async (job: Job, token?: string) => {
        const result = await handler({
          id: fromJobId(job.id as string),
          data: job.data as T,
          attempt: Math.max(1, job.attemptsStarted),
          addedAt: job.timestamp,
        });
        if ('done' in result) return;
        await job.moveToDelayed(Date.now() + Math.max(1, result.retryInMs), token);
        throw new DelayedError();
      },
      {
        connection: { ...redisOptions(this.options.redisUrl), maxRetriesPerRequest: null },
        prefix: this.options.prefix,
        concurrency: this.options.concurrency,
        settings: {
          backoffStrategy: (attemptsMade: number) => retryDelayMs(attemptsMade, this.options),
        },
      },
    );
    this.worker.on('error', (error) =>
      this.options.logger.warn({ queue: this.name, err: error.message }, 'queue worker error'),
    );
    this.worker.on('failed', (job, error) =>
      this.options.logger.warn(
        { queue: this.name, job: job?.id, err: error.message },
        'job failed; retrying',
      ),
    );
    await this.worker.waitUntilReady();
  }

  async pending(): Promise<number> {
    const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }
}

/**
 * BullMQ refuses custom ids with ":" (its own repeat ids use it), and ours are `channel:event`.
 * Percent-escaping keeps them unique and readable in Redis.
 */
function toJobId(id: string): string {
  return id.replace(/%/g, '%25').replace(/:/g, '%3A');
}

function fromJobId(jobId: string): string {
  return jobId.replace(/%3A/g, ':').replace(/%25/g, '%');
}

/** ioredis options from a redis:// or rediss:// URL (BullMQ takes options, not our client). */
export function redisOptions(url: string): {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: object;
} {
  const parsed = new URL(url);
  const db = Number(parsed.pathname.replace(/^\//, '') || '0');
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port || 6379),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(db > 0 ? { db } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}
