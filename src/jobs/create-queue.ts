import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisReachability } from '../core/redis/redis-reachability.js';
import { BullMqDurableQueue } from './bullmq-durable-queue.js';
import type { DurableQueue, QueueOptions } from './durable-queue.js';
import { FailoverQueue } from './failover-queue.js';
import { LocalDurableQueue } from './local-durable-queue.js';

/**
 * BullMQ when Redis is configured (shared by every server), else the local log. Given Redis and
 * its reachability, BullMQ with a local log (`<name>-outage`) for the jobs added while Redis is away.
 */
export function createQueue<T>(
  name: string,
  deps: QueueOptions & {
    dataDir: string;
    keyPrefix: string;
    logger: Logger;
    /** `redisConnectionOptions(config.redis)`; absent when Redis is not configured. */
    connection?: RedisOptions;
    /**
     * Whether Redis answers now, and the agent's client: with `connection`, jobs go to a local log
     * while Redis does not answer.
     */
    outage?: {
      reachability: RedisReachability;
      redis: Redis;
      /** Whether a node still replays its write-ahead log (see `ReplayBeacon`). */
      replaying?: () => Promise<boolean>;
    };
  },
): DurableQueue<T> {
  const { dataDir, keyPrefix, logger, connection, outage, ...options } = deps;
  if (!connection) return new LocalDurableQueue<T>({ name, dataDir, logger, ...options });
  const shared = new BullMqDurableQueue<T>({
    name,
    connection,
    prefix: `${keyPrefix}:bull`,
    logger,
    ...options,
    ...(outage ? { reachable: () => outage.reachability.reachable } : {}),
  });
  if (!outage) return shared;
  // Its own name: in embedded mode `<name>.queue.log` is the whole queue, not an outage's part.
  const local = new LocalDurableQueue<T>({ name: `${name}-outage`, dataDir, logger, ...options });
  return new FailoverQueue<T>({
    shared,
    local,
    reachability: outage.reachability,
    redis: outage.redis,
    markerPrefix: `${keyPrefix}:bull:${name}:taken`,
    ...(outage.replaying ? { replaying: outage.replaying } : {}),
    logger,
  });
}
