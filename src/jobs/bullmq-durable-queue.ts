import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { dropConnection } from './drop-connection.js';
import { type DurableQueue, type JobHandler, type QueueOptions, retryDelayMs } from './durable-queue.js';

/** How long a job stays locked to a worker that stopped renewing (it died). */
const STALLED_LOCK_MS = 6000;

export interface BullMqDurableQueueOptions extends QueueOptions {
  name: string;
  /**
   * Where Redis is (`redisConnectionOptions`): one server or a Sentinel group. Each BullMQ
   * connection is built from a copy with its own settings, never from a shared client.
   */
  connection: RedisOptions;
  /** BullMQ's key prefix; the agent's `redis.keyPrefix`, so several agents can share one Redis. */
  prefix: string;
  logger: Logger;
  /** How long a finished job id is kept, so adding it again does nothing. Default one day. */
  dedupeMs?: number;
  /**
   * Whether Redis answers now. While it does not, `close` drops the connections instead of
   * waiting for running jobs and a polite QUIT (both wait for Redis). Default: always.
   */
  reachable?: () => boolean;
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
      connection: { ...options.connection, enableOfflineQueue: false, maxRetriesPerRequest: 1 },
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
          // Moved back from a worker that stopped renewing its lock: that worker's server died.
          ...(job.stalledCounter > 0 ? { interrupted: true } : {}),
        });
        if ('done' in result) return;
        await job.moveToDelayed(Date.now() + Math.max(1, result.retryInMs), token);
        throw new DelayedError();
      },
      {
        // Blocking reads must wait out a reconnect (a failover) instead of failing.
        connection: { ...this.options.connection, maxRetriesPerRequest: null },
        prefix: this.options.prefix,
        concurrency: this.options.concurrency,
        // A job whose server died is handed to another worker once its lock lapses (renewed every
        // half lock while the job runs, so a long turn keeps it) and the stalled check runs:
        // seconds, not BullMQ's default of up to a minute. The pipeline's event claim keeps a
        // handed-over turn from running twice at once.
        lockDuration: STALLED_LOCK_MS,
        stalledInterval: STALLED_LOCK_MS / 2,
        // However often servers die under a job, it stays queued until it completes.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
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

  /** Stops taking new jobs on this node (running ones go on); no Redis is needed for it. */
  pauseWorker(): void {
    void this.worker?.pause(true);
  }

  resumeWorker(): void {
    this.worker?.resume();
  }

  async pending(): Promise<number> {
    const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  async close(): Promise<void> {
    if (this.options.reachable?.() === false) {
      // A job still running is left active in Redis: its lock lapses and a worker takes it up.
      await this.worker?.close(true);
      await dropConnection(this.queue);
      return;
    }
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
