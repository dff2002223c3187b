import type { RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { BullMqDurableQueue } from './bullmq-durable-queue.js';
import type { DurableQueue, QueueOptions } from './durable-queue.js';
import { LocalDurableQueue } from './local-durable-queue.js';

/** BullMQ when Redis is configured (shared by every server), else the local log. */
export function createQueue<T>(
  name: string,
  deps: QueueOptions & {
    dataDir: string;
    keyPrefix: string;
    logger: Logger;
    /** `redisConnectionOptions(config.redis)`; absent when Redis is not configured. */
    connection?: RedisOptions;
  },
): DurableQueue<T> {
  const { dataDir, keyPrefix, logger, connection, ...options } = deps;
  return connection
    ? new BullMqDurableQueue<T>({ name, connection, prefix: `${keyPrefix}:bull`, logger, ...options })
    : new LocalDurableQueue<T>({ name, dataDir, logger, ...options });
}
