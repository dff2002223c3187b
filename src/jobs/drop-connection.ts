import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';

/**
 * Drops a BullMQ queue's connection without waiting for Redis, for a close while Redis is away:
 * BullMQ's `close` sends QUIT (which waits for Redis) and its `disconnect` waits for an `end` that
 * a reconnecting client never emits. A queue that never connected has nothing to drop.
 */
export async function dropConnection(queue: Queue): Promise<void> {
  const client = await Promise.race([queue.client, sleep(500).then(() => undefined)]);
  client?.disconnect();
}
