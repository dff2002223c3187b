import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AppendLog, rewriteLog } from '../memory/append-log.js';
import type { RedisReachability } from './redis-reachability.js';

/** One write made while Redis was unreachable, waiting to be replayed to it. */
export interface WalRecord {
  /** Unique: replays use it to apply each record once. */
  id: string;
  /** Which replayer applies it (`memory.commit`, `identity.touch`, `cost.settle`). */
  kind: string;
  /** Epoch ms when it was written. */
  at: number;
  data: unknown;
}

/**
 * Applies one record to Redis. Must be idempotent: after a crash mid-replay, or a reply lost on
 * the way back, the same record is applied again.
 */
export type WalReplayer = (record: WalRecord) => Promise<void>;

export interface WriteAheadLogOptions {
  dataDir: string;
  reachability: RedisReachability;
  logger: Logger;
  /** A record that fails this many replays with an error other than "unreachable" is set aside. */
  maxApplyFailures?: number;
  now?: () => number;
}

/** While replaying, how many records are applied between two rewrites of the log file. */
const REWRITE_EVERY = 200;

/**
 * The local write-ahead log that keeps a node serving while Redis is unreachable: writes that
 * would have gone to Redis are fsync'd here first (`data/redis-wal.log`) and replayed to Redis,
 * in the order they were written, once it answers again.
 *
 * While the log holds records (`engaged`), every write goes through it, even with Redis back:
 * otherwise a new write could reach Redis before an older one still waiting here.
 *
 * A record whose replay keeps failing for a reason other than Redis being away (a bug, or data
 * Redis refuses) is moved to `data/redis-wal.rejected.log` after `maxApplyFailures` attempts and
 * reported, so one bad record cannot hold back every later one.
 */
export class WriteAheadLog {
  readonly path: string;
  private log: AppendLog<WalRecord>;
  private readonly rejected: AppendLog<WalRecord & { error: string }>;
  private readonly replayers = new Map<string, WalReplayer>();
  private pending: { record: WalRecord; written: Promise<void> }[] = [];
  private readonly failures = new Map<string, number>();
  private replaying: Promise<void> | undefined;
  private rewriting: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private replayedTotal = 0;
  private readonly now: () => number;

  constructor(private readonly options: WriteAheadLogOptions) {
    this.path = join(options.dataDir, 'redis-wal.log');
    this.log = new AppendLog(this.path);
    this.rejected = new AppendLog(join(options.dataDir, 'redis-wal.rejected.log'));
    this.now = options.now ?? Date.now;
  }

  /** Registers the replayer of one kind; every kind in the log must have one before `open()`. */
  handle(kind: string, replayer: WalReplayer): void {
    this.replayers.set(kind, replayer);
  }

  /** Loads the records a previous process left, and replays them if Redis answers. */
  open(): WalRecord[] {
    const loaded = this.log.open();
    this.rejected.open();
    if (loaded.skipped > 0)
      this.options.logger.warn(
        { skipped: loaded.skipped, path: this.path },
        'skipped damaged write-ahead records',
      );
    this.pending = loaded.records.map((record) => ({ record, written: Promise.resolve() }));
    if (this.pending.length > 0)
      this.options.logger.info({ records: this.pending.length }, 'write-ahead log holds writes for Redis');
    this.options.reachability.on('regained', this.onRegained);
    this.kick();
    return loaded.records;
  }

  /** True while writes must go here rather than to Redis: Redis is away, or records wait. */
  get engaged(): boolean {
    return !this.options.reachability.reachable || this.pending.length > 0;
  }

  /** Records waiting for Redis. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Records replayed to Redis since this process started. */
  get replayed(): number {
    return this.replayedTotal;
  }

  /** Durably records a write for Redis; resolves once it is fsync'd. */
  async append(kind: string, data: unknown): Promise<WalRecord> {
    if (!this.replayers.has(kind)) throw new Error(`no replayer for write-ahead records of kind "${kind}"`);
    while (this.rewriting) await this.rewriting;
    if (this.closed) throw new Error('the write-ahead log is closed');
    const record: WalRecord = { id: randomUUID(), kind, at: this.now(), data };
    const written = this.log.append(record);
    // In order of the calls, which is the order of the file: the replay follows it.
    const entry = { record, written };
    this.pending.push(entry);
    try {
      await written;
    } catch (error) {
      this.pending = this.pending.filter((p) => p !== entry);
      throw error;
    }
    this.kick();
    return record;
  }

  /** Replays what waits, if Redis answers; resolves when this attempt ends. */
  replay(): Promise<void> {
    if (this.closed || this.pending.length === 0 || !this.options.reachability.reachable)
      return this.replaying ?? Promise.resolve();
    this.replaying ??= this.drain().finally(() => {
      this.replaying = undefined;
    });
    return this.replaying;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.options.reachability.off('regained', this.onRegained);
    await this.replaying?.catch(() => {});
    while (this.rewriting) await this.rewriting;
    await this.log.close();
    await this.rejected.close();
  }

  private readonly onRegained = () => this.kick();

  private kick(): void {
    this.replay().catch((error: unknown) =>
      this.options.logger.error({ err: (error as Error).message }, 'write-ahead replay failed'),
    );
  }

  private async drain(): Promise<void> {
    const started = this.now();
    const before = this.replayedTotal;
    let sinceRewrite = 0;
    while (!this.closed && this.pending.length > 0 && this.options.reachability.reachable) {
      const entry = this.pending[0] as (typeof this.pending)[number];
      // A record whose write failed was never acknowledged: its caller saw the error, and
      // `append` takes it out of the queue.
      if (
        !(await entry.written.then(
          () => true,
          () => false,
        ))
      ) {
        if (this.pending[0] === entry) this.pending.shift();
        continue;
      }
      const outcome = await this.apply(entry.record);
      if (outcome === 'unreachable') break;
      this.pending.shift();
      if (outcome === 'applied') this.replayedTotal += 1;
      sinceRewrite += 1;
      if (sinceRewrite >= REWRITE_EVERY) {
        await this.rewrite();
        sinceRewrite = 0;
      }
    }
    if (sinceRewrite > 0) await this.rewrite();
    const replayed = this.replayedTotal - before;
    if (replayed > 0)
      this.options.logger.info(
        { replayed, left: this.pending.length, ms: this.now() - started },
        this.pending.length === 0 ? 'write-ahead log replayed to Redis' : 'write-ahead replay paused',
      );
    if (this.pending.length > 0 && !this.closed) {
      // Redis went away again, or a record failed: try again soon (or on `regained`).
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.kick(), 1000);
      this.retryTimer.unref();
    }
  }

  private async apply(record: WalRecord): Promise<'applied' | 'rejected' | 'unreachable'> {
    const replayer = this.replayers.get(record.kind);
    try {
      if (!replayer) throw new Error(`no replayer for kind "${record.kind}"`);
      await replayer(record);
      this.failures.delete(record.id);
      return 'applied';
    } catch (error) {
      if (this.options.reachability.noteFailure(error)) return 'unreachable';
      const failures = (this.failures.get(record.id) ?? 0) + 1;
      this.failures.set(record.id, failures);
      const message = (error as Error).message;
      if (failures < (this.options.maxApplyFailures ?? 5)) {
        this.options.logger.warn(
          { record: record.id, kind: record.kind, err: message },
          'write-ahead replay failed',
        );
        return 'unreachable';
      }
      this.failures.delete(record.id);
      await this.rejected.append({ ...record, error: message });
      this.options.logger.error(
        { record: record.id, kind: record.kind, err: message, path: this.rejected.path },
        'a write-ahead record could not be replayed; it is set aside for an operator',
      );
      return 'rejected';
    }
  }

  /** Shrinks the file to the records still waiting (appends wait meanwhile). */
  private async rewrite(): Promise<void> {
    const step = (async () => {
      await this.log.close();
      try {
        rewriteLog(
          this.path,
          this.pending.map((p) => p.record),
        );
      } finally {
        // Reopened even when the rewrite failed (a full disk): the old file is still whole.
        this.log = new AppendLog(this.path);
        this.log.open();
      }
    })();
    this.rewriting = step;
    try {
      await step;
    } finally {
      this.rewriting = undefined;
    }
  }
}
