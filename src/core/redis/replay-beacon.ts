import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisReachability } from './redis-reachability.js';

/** How long a node's "still replaying" mark lasts unless renewed: a node that died lets go. */
const MARK_TTL_MS = 5000;

/**
 * Tells every node, through Redis, that this node's write-ahead log still has writes to replay
 * after an outage. Until those reach Redis, another node would not see the turns this node
 * answered during the outage, so it must not yet re-run the BullMQ jobs that were in flight when
 * Redis went away (an inbox job re-run there would answer an answered message again). The
 * failover queues wait on `anyReplaying()` before their workers take jobs again.
 *
 * The mark is one field per node of `<prefix>:wal-replaying`, holding until when it counts
 * (renewed every second while records wait, so a node that dies mid-replay stops counting).
 */
export class ReplayBeacon {
  private readonly key: string;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private marked = false;

  constructor(
    private readonly options: {
      redis: Redis;
      keyPrefix: string;
      node: string;
      reachability: RedisReachability;
      /** Records this node's write-ahead log still holds. */
      pending: () => number;
      logger: Logger;
      now?: () => number;
    },
  ) {
    this.key = `${options.keyPrefix}:wal-replaying`;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    // At once when Redis returns: the other nodes' workers wait a few seconds, then look.
    this.options.reachability.on('regained', this.beat);
    this.timer = setInterval(this.beat, 1000);
    this.timer.unref();
  }

  stop(): void {
    this.options.reachability.off('regained', this.beat);
    clearInterval(this.timer);
  }

  /** Whether some node, this one included, still replays writes Redis has not seen. */
  async anyReplaying(): Promise<boolean> {
    if (this.options.pending() > 0) return true;
    const marks = await this.options.redis.hgetall(this.key);
    const now = this.now();
    return Object.values(marks).some((until) => Number(until) > now);
  }

  private readonly beat = () => {
    const { redis, node, reachability, pending, logger } = this.options;
    if (!reachability.reachable) return;
    const waiting = pending() > 0;
    if (!waiting && !this.marked) return;
    const write = waiting
      ? redis.hset(this.key, node, String(this.now() + MARK_TTL_MS))
      : redis.hdel(this.key, node);
    this.marked = waiting;
    write.catch((error: unknown) => {
      this.marked = true; // Try again (set or clear) at the next beat.
      logger.debug({ err: (error as Error).message }, 'could not update the replay mark');
    });
  };
}
