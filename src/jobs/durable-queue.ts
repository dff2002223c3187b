/**
 * A queue whose jobs survive a crash: the inbox of platform events and the outbox of replies.
 * Two implementations: the local append-only log (embedded mode) and BullMQ on Redis (shared by
 * every process, so the other server finishes what a dead one started).
 */
export interface QueuedJob<T> {
  /** Unique per job: adding the same id again (while it is kept) does nothing. */
  id: string;
  data: T;
  /** 1 on the first run. */
  attempt: number;
  /** Epoch ms when the job was first added. */
  addedAt: number;
  /**
   * An earlier run may have been cut off mid-way (its server died): whatever it did before the
   * crash may already have happened, so a handler with effects outside the agent (a send) knows
   * this run may repeat one.
   */
  interrupted?: boolean;
}

/** What a handler decides: the job is finished (delivered, or given up), or runs again later. */
export type JobResult = { done: true } | { retryInMs: number };

export type JobHandler<T> = (job: QueuedJob<T>) => Promise<JobResult>;

export interface QueueOptions {
  /** Jobs run at once. */
  concurrency: number;
  /** Delay after a handler throws: `retryBaseMs * 2^(attempt-1)`, capped at `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export interface DurableQueue<T> {
  readonly name: string;
  /** Resolves once the job is durable. */
  add(id: string, data: T): Promise<void>;
  /** Starts running jobs (those left from before a restart too). */
  start(handler: JobHandler<T>): Promise<void>;
  /** Jobs not yet finished. */
  pending(): Promise<number>;
  /** Stops taking jobs, waits for running ones, closes. */
  close(): Promise<void>;
}

export function retryDelayMs(
  attempt: number,
  options: Pick<QueueOptions, 'retryBaseMs' | 'retryMaxMs'>,
): number {
  return Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** Math.max(0, attempt - 1));
}
