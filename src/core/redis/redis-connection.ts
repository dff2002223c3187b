import type { RedisOptions } from 'ioredis';
import type { AgentConfig } from '../config/schema.js';
import { parseHostPort } from './host-port.js';

type RedisConfig = AgentConfig['redis'];

/** True when memory, identities, budgets and queues live in Redis (one server or a Sentinel group). */
export function isRedisConfigured(config: { readonly redis: Readonly<RedisConfig> }): boolean {
  return config.redis.url !== undefined || config.redis.sentinels !== undefined;
}

/**
 * ioredis options for the configured Redis: one server from `url`, or the primary the sentinels
 * name; undefined when Redis is not configured. Callers add their own retry and queue settings,
 * and each builds its own client (BullMQ needs options, not a shared instance).
 */
export function redisConnectionOptions(redis: Readonly<RedisConfig>): RedisOptions | undefined {
  if (redis.sentinels !== undefined) {
    return {
      sentinels: redis.sentinels.map((text) => {
        const address = parseHostPort(text);
        // The schema has validated every entry; this guards callers that skipped it.
        if (!address) throw new RangeError(`redis.sentinels: "${text}" is not host:port`);
        return address;
      }),
      name: redis.masterName,
      ...(redis.password !== undefined ? { password: redis.password } : {}),
      ...(redis.sentinelPassword !== undefined ? { sentinelPassword: redis.sentinelPassword } : {}),
      retryStrategy: reconnectDelayMs,
      // A primary demoted while this client is connected is left on the first READONLY. Not
      // `failoverDetector`: in ioredis 6.0.0 its sentinel subscriptions outlive `quit()` (one
      // socket per sentinel per client, reconnecting forever).
      reconnectOnError: reconnectOnReadonly,
    };
  }
  if (redis.url !== undefined) {
    const fromUrl = urlOptions(redis.url);
    return {
      ...fromUrl,
      ...(fromUrl.password === undefined && redis.password !== undefined ? { password: redis.password } : {}),
      retryStrategy: reconnectDelayMs,
      reconnectOnError: reconnectOnReadonly,
    };
  }
  return undefined;
}

/**
 * ioredis's own back-off (50 ms more per attempt, at most 2 s), stated so BullMQ does not apply
 * its default (exponential, up to 20 s): with that, a worker could come back from a failover
 * many seconds after the rest of the agent, and closing it meanwhile waits for the reconnect.
 */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(attempt * 50, 2000);
}

/**
 * A `READONLY` reply means this connection reached a replica, typically a primary demoted by a
 * failover: reconnect (which asks the sentinels, or DNS, for the primary again) and resend the
 * command (2), so no client keeps writing to a node that refuses writes.
 */
export function reconnectOnReadonly(error: Error): 2 | false {
  return error.message.includes('READONLY') ? 2 : false;
}

/** Host, port, credentials, database and TLS from a redis:// or rediss:// URL. */
function urlOptions(url: string): {
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
