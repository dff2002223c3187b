import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isConnectionError, type RedisReachability } from '../core/redis/redis-reachability.js';
import type { BullMqDurableQueue } from './bullmq-durable-queue.js';
import type { DurableQueue, JobHandler } from './durable-queue.js';
import type { LocalDurableQueue } from './local-durable-queue.js';

export interface FailoverQueueOptions<T> {
  /** The BullMQ queue every server shares. */
  shared: BullMqDurableQueue<T>;
  /** This node's own log for the outage (`<name>-outage`), so its file is not the embedded queue's. */
  local: LocalDurableQueue<T>;
  reachability: RedisReachability;
  /** The agent's own client: it is ready when `regained` fires (BullMQ's may still reconnect). */
  redis: Redis;
  /** Where the "taken locally" markers go: `<markerPrefix>:<id>`. */
  markerPrefix: string;
  /** How long a marker is kept: the dedupe window of the queues. Default one day. */
  markerTtlMs?: number;
  /**
   * After Redis returns, how long this node's BullMQ worker still waits, so every node has
   * recorded what its local log took: more than the clients' longest reconnect delay (2 s).
   * Default 3000 ms.
   */
  resumeAfterMs?: number;
  /**
   * Whether some node still replays its write-ahead log to Redis: until none does, the worker
   * keeps waiting (checked every `resumeAfterMs / 6`, for at most `maxReplayWaitMs`).
   */
  replaying?: () => Promise<boolean>;
  /** Default 60 s: a replay that takes longer must not stop the queue for good. */
  maxReplayWaitMs?: number;
  logger: Logger;
}

/**
 * A durable queue that keeps taking jobs while Redis is unreachable: they go to BullMQ (shared by
 * every server) while Redis answers, and to this node's fsync'd log while it does not, so the
 * inbox and the outbox never refuse a platform event or a reply.
 *
 * A job added to the local log runs on this node only, and stays there after Redis returns (it
 * is not moved to BullMQ). That is accepted: if this node dies during the outage, the other
 * server cannot take its local jobs over, but they run from the log when this node restarts.
 *
 * Adding an id the local log knows (waiting, running, or finished within its dedupe window) does
 * nothing, so a reply sent locally during the outage is not sent again when the same id is added
 * after Redis returns (a platform redelivering the event). That holds on this node only; an id
 * BullMQ took before the outage is not known to the local log while Redis is away.
 */
export class FailoverQueue<T> implements DurableQueue<T> {
  readonly name: string;

  /** Ids added to the local log during an outage, not yet recorded in Redis. */
  private readonly takenLocally = new Set<string>();
  private announceRetry: NodeJS.Timeout | undefined;
  private resumeTimer: NodeJS.Timeout | undefined;
  /**
   * Closed from an outage until the worker may take jobs again: a BullMQ job that reaches the
   * handler meanwhile (pausing a BullMQ worker does not stop a fetch already under way) waits here.
   */
  private gate: { opened: Promise<void>; open: () => void } | undefined;

  constructor(private readonly options: FailoverQueueOptions<T>) {
    this.name = options.shared.name;
    options.reachability.on('lost', this.pauseShared);
    options.reachability.on('regained', this.onRegained);
  }

  /**
   * While Redis is away, and for a moment after, this node's BullMQ worker takes no jobs: every
   * node must first record which jobs its local log took (`announceTaken`), or a copy of one in
   * BullMQ (an add that reached Redis as it went away) could run on a node that does not know.
   * The moment covers the other nodes' clients reconnecting later than this one's.
   */
  private readonly pauseShared = () => {
    clearTimeout(this.resumeTimer);
    if (!this.gate) {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      this.gate = { opened, open };
    }
    this.options.shared.pauseWorker();
  };

  private resumeShared(): void {
    this.gate?.open();
    this.gate = undefined;
    this.options.shared.resumeWorker();
  }

  private readonly onRegained = () => {
    this.announceTaken();
    clearTimeout(this.resumeTimer);
    const resumeAfterMs = this.options.resumeAfterMs ?? 3000;
    const giveUpAt = Date.now() + resumeAfterMs + (this.options.maxReplayWaitMs ?? 60_000);
    // A job in flight when Redis went away is re-run once it is back, on any node: that node must
    // see what the outage's write-ahead logs hold (the turn answered, its event marked) first.
    const resumeWhenReplayed = async () => {
      const { replaying, logger } = this.options;
      let waiting = false;
      try {
        waiting = (await replaying?.()) ?? false;
      } catch (error) {
        waiting = true; // Redis went away again: the next regain starts over.
        logger.debug({ queue: this.name, err: (error as Error).message }, 'could not read the replay marks');
      }
      if (waiting && Date.now() < giveUpAt) {
        this.resumeTimer = setTimeout(resumeWhenReplayed, Math.max(50, resumeAfterMs / 6));
        this.resumeTimer.unref();
        return;
      }
      if (waiting)
        logger.warn(
          { queue: this.name },
          'a write-ahead replay is still running; the queue takes jobs again anyway',
        );
      this.resumeShared();
    };
    this.resumeTimer = setTimeout(resumeWhenReplayed, resumeAfterMs);
    this.resumeTimer.unref();
  };

  async add(id: string, data: T): Promise<void> {
    const { shared, local, reachability, logger } = this.options;
    if (local.has(id)) return;
    if (reachability.reachable) {
      try {
        await shared.add(id, data);
        return;
      } catch (error) {
        // Anything but "Redis is away" (a bad job id, a script error) must not hide in the log.
        if (!reachability.noteFailure(error)) throw error;
        logger.warn(
          { queue: this.name, job: id, err: (error as Error).message },
          'queued locally: Redis is away',
        );
      }
    }
    await local.add(id, data);
    this.takenLocally.add(id);
  }

  /** Once Redis is back: tells every node which jobs this node's local log took. */
  private readonly announceTaken = () => {
    clearTimeout(this.announceRetry);
    const ids = [...this.takenLocally];
    if (ids.length === 0) return;
    const batch = this.options.redis.pipeline();
    for (const id of ids) batch.set(this.markerKey(id), '1', 'PX', this.options.markerTtlMs ?? 86_400_000);
    batch
      .exec()
      .then((results) => {
        const failed = (results ?? []).find(([error]) => error);
        if (failed) throw failed[0];
        for (const id of ids) this.takenLocally.delete(id);
      })
      .catch((error: unknown) => {
        this.options.logger.warn(
          { queue: this.name, jobs: ids.length, err: (error as Error).message },
          'could not record the jobs taken locally during the outage; trying again',
        );
        this.announceRetry = setTimeout(this.announceTaken, 1000);
        this.announceRetry.unref();
      });
  };

  private markerKey(id: string): string {
    return `${this.options.markerPrefix}:${id}`;
  }

  async start(handler: JobHandler<T>): Promise<void> {
    const { shared, local, reachability, logger } = this.options;
    // First, so jobs left in the log by a restart during an outage run even if Redis is away.
    await local.start(handler);
    // BullMQ's start waits until Redis answers: while it is away, the worker connects in the
    // background rather than holding up the agent (which then serves from the local log).
    // The same job can be in BullMQ AND in a local log: an add that failed as Redis went away may
    // have reached it, or a job that ran in BullMQ before the outage (its completion lost) is
    // added again during it. The local log has it in hand or did it already, so the BullMQ copy,
    // run once Redis is back, is finished unrun on any node (no reply is sent twice).
    const sharedStarted = shared.start(async (job) => {
      while (this.gate) await this.gate.opened;
      if (local.has(job.id) || (await this.options.redis.exists(this.markerKey(job.id))) === 1) {
        logger.info({ queue: this.name, job: job.id }, 'job already taken by the local log; skipped');
        return { done: true };
      }
      return handler(job);
    });
    if (reachability.reachable) {
      await sharedStarted;
      return;
    }
    sharedStarted.catch((error: unknown) =>
      logger.error({ queue: this.name, err: error }, 'shared queue worker could not start'),
    );
  }

  async pending(): Promise<number> {
    const local = await this.options.local.pending();
    // Not asked while Redis is away: a BullMQ queue made during the outage (a restart) waits for
    // Redis instead of failing.
    if (!this.options.reachability.reachable) return local;
    try {
      return local + (await this.options.shared.pending());
    } catch (error) {
      // Redis is away: what BullMQ holds is not knowable now, and not this node's to finish.
      if (isConnectionError(error)) return local;
      throw error;
    }
  }

  async close(): Promise<void> {
    const { shared, local, logger } = this.options;
    this.options.reachability.off('lost', this.pauseShared);
    this.options.reachability.off('regained', this.onRegained);
    clearTimeout(this.announceRetry);
    clearTimeout(this.resumeTimer);
    // A job held at the gate runs (or is cut off by the close) rather than hanging it.
    this.gate?.open();
    this.gate = undefined;
    // Both at once, so the local log is flushed and closed whatever BullMQ's close does.
    const [sharedClosed, localClosed] = await Promise.allSettled([shared.close(), local.close()]);
    if (localClosed.status === 'rejected') throw localClosed.reason;
    if (sharedClosed.status === 'rejected') {
      // Closing with Redis away fails to say goodbye to it; nothing of ours is lost by that.
      if (!isConnectionError(sharedClosed.reason)) throw sharedClosed.reason;
      logger.warn(
        { queue: this.name, err: (sharedClosed.reason as Error).message },
        'shared queue closed with Redis away',
      );
    }
  }
}
