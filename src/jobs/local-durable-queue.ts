import { join } from 'node:path';
import type { Logger } from 'pino';
import { AppendLog, rewriteLog } from '../core/memory/append-log.js';
import {
  type DurableQueue,
  type JobHandler,
  type QueuedJob,
  type QueueOptions,
  retryDelayMs,
} from './durable-queue.js';

type QueueRecord<T> = { t: 'add'; id: string; data: T; at: number } | { t: 'done'; id: string; at: number };

interface Entry<T> {
  job: QueuedJob<T>;
  dueAt: number;
}

export interface LocalDurableQueueOptions extends QueueOptions {
  name: string;
  dataDir: string;
  logger: Logger;
  /** How long a finished id is remembered, so adding it again does nothing. Default one day. */
  dedupeMs?: number;
  now?: () => number;
}

/**
 * A durable queue on the local append-only log, for one process (embedded mode). `add` resolves
 * after its record is fsync'd; finishing a job appends a `done` record. On open, the jobs without
 * one run again (a job may therefore run twice after a crash: handlers must tolerate that) and
 * the log is compacted to the unfinished jobs plus the recently finished ids.
 */
export class LocalDurableQueue<T> implements DurableQueue<T> {
  readonly name: string;
  private readonly path: string;
  private log: AppendLog<QueueRecord<T>>;
  private readonly waiting = new Map<string, Entry<T>>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly finished = new Map<string, number>();
  private handler: JobHandler<T> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;
  private readonly dedupeMs: number;

  constructor(private readonly options: LocalDurableQueueOptions) {
    this.name = options.name;
    this.path = join(options.dataDir, `${options.name}.queue.log`);
    this.log = new AppendLog(this.path);
    this.now = options.now ?? Date.now;
    this.dedupeMs = options.dedupeMs ?? 86_400_000;
  }

  /** Whether the id is waiting, running, or finished within the dedupe window: adding it does nothing. */
  has(id: string): boolean {
    return this.waiting.has(id) || this.running.has(id) || this.finished.has(id);
  }

  async add(id: string, data: T): Promise<void> {
    if (this.closed) throw new Error(`queue ${this.name} is closed`);
    if (this.has(id)) return;
    const at = this.now();
    const entry: Entry<T> = { job: { id, data, attempt: 1, addedAt: at }, dueAt: at };
    // Held before the write, so a second add of the same id during the fsync is a no-op too.
    this.waiting.set(id, entry);
    try {
      await this.log.append({ t: 'add', id, data, at });
    } catch (error) {
      this.waiting.delete(id);
      throw error;
    }
    this.schedule();
  }

  async start(handler: JobHandler<T>): Promise<void> {
    this.handler = handler;
    const loaded = this.log.open();
    if (loaded.skipped > 0)
      this.options.logger.warn({ queue: this.name, ...loaded }, 'queue log: skipped bad records');
    const cutoff = this.now() - this.dedupeMs;
    for (const record of loaded.records) {
      if (record.t === 'add') {
        if (!this.finished.has(record.id)) {
          this.waiting.set(record.id, {
            // Unfinished at the last stop: it may have been running when the process died.
            job: { id: record.id, data: record.data, attempt: 1, addedAt: record.at, interrupted: true },
            dueAt: this.now(),
          });
        }
      } else {
        this.waiting.delete(record.id);
        if (record.at >= cutoff) this.finished.set(record.id, record.at);
      }
    }
    if (this.waiting.size > 0) {
      this.options.logger.info({ queue: this.name, jobs: this.waiting.size }, 'resuming unfinished jobs');
    }
    if (loaded.records.length > this.waiting.size + this.finished.size) await this.compact();
    this.schedule();
  }

  async pending(): Promise<number> {
    return this.waiting.size + this.running.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.running.values()]);
    await this.log.close();
  }

  private schedule(): void {
    if (this.closed || !this.handler) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    let nextDue = Number.POSITIVE_INFINITY;
    for (const [id, entry] of this.waiting) {
      if (this.running.size >= this.options.concurrency) break;
      if (entry.dueAt > now) {
        nextDue = Math.min(nextDue, entry.dueAt);
        continue;
      }
      this.waiting.delete(id);
      const run = this.run(entry).finally(() => {
        this.running.delete(id);
        this.schedule();
      });
      this.running.set(id, run);
    }
    if (Number.isFinite(nextDue) && this.running.size < this.options.concurrency) {
      this.timer = setTimeout(() => this.schedule(), Math.max(0, nextDue - now));
      this.timer.unref();
    }
  }

  private async run(entry: Entry<T>): Promise<void> {
    const { job } = entry;
    let retryInMs: number;
    try {
      const result = await (this.handler as JobHandler<T>)(job);
      if ('done' in result) {
        await this.markDone(job.id);
        return;
      }
      retryInMs = result.retryInMs;
    } catch (error) {
      retryInMs = retryDelayMs(job.attempt, this.options);
      this.options.logger.warn(
        { queue: this.name, job: job.id, attempt: job.attempt, err: error, retryInMs },
        'job failed; retrying',
      );
    }
    if (this.closed) return; // Still unfinished in the log: it runs again after the restart.
    this.waiting.set(job.id, {
      job: { ...job, attempt: job.attempt + 1 },
      dueAt: this.now() + Math.max(0, retryInMs),
    });
  }

  private async markDone(id: string): Promise<void> {
    const at = this.now();
    this.forgetOldFinished(at);
    this.finished.set(id, at);
    try {
      await this.log.append({ t: 'done', id, at });
    } catch (error) {
      // The job did its work; a lost `done` only means it may run once more after a restart.
      this.options.logger.error({ queue: this.name, job: id, err: error }, 'could not record a finished job');
    }
  }

  /**
   * Ids finished longer than `dedupeMs` ago no longer need remembering. Map order is insertion
   * order, which is finishing order, so the old ones are at the front.
   */
  private forgetOldFinished(now: number): void {
    const cutoff = now - this.dedupeMs;
    for (const [id, at] of this.finished) {
      if (at >= cutoff) break;
      this.finished.delete(id);
    }
  }

  private async compact(): Promise<void> {
    await this.log.close();
    const records: QueueRecord<T>[] = [];
    for (const [id, at] of this.finished) records.push({ t: 'done', id, at });
    for (const { job } of this.waiting.values()) {
      records.push({ t: 'add', id: job.id, data: job.data, at: job.addedAt });
    }
    try {
      rewriteLog(this.path, records);
    } catch (error) {
      this.options.logger.warn({ queue: this.name, err: error }, 'queue log: compaction failed');
    }
    this.log = new AppendLog(this.path);
    this.log.open();
  }
}
