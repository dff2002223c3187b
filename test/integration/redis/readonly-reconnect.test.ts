import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/core/config/load-config.js';
import { redisConnectionOptions } from '../../../src/core/redis/redis-connection.js';
import { freePort } from '../../support/free-port.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';

describe('a client on a primary that is demoted', () => {
  let redis: TestRedis | undefined;
  const clients: Redis[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
    await redis?.stop();
    redis = undefined;
  });

  it('reconnects on READONLY and resends the write instead of failing it', async () => {
    redis = await startRedis();
    const config = loadConfig({ env: { REDIS_URL: redis.url }, cwd: redis.dir });
    const admin = new Redis({ host: '127.0.0.1', port: redis.port });
    // The agent's own settings for its shared client.
    const client = new Redis({ ...redisConnectionOptions(config.redis), maxRetriesPerRequest: 2 });
    clients.push(admin, client);
    client.on('error', () => {});
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    expect(await client.set('turn', 'before')).toBe('OK');

    // The node becomes a replica (of a primary that is not there), as a demoted primary does.
    await admin.call('REPLICAOF', '127.0.0.1', String(await freePort()));
    let outcome: string | undefined;
    const write = client.set('turn', 'after').then(
      (reply) => (outcome = `resolved ${reply}`),
      (error: Error) => (outcome = `rejected ${error.message}`),
    );
    await sleep(500);
    expect(outcome, 'the write waits for a writable primary').toBeUndefined();
    expect(reconnects).toBeGreaterThan(0);
    expect(await admin.get('turn')).toBe('before');

    await admin.call('REPLICAOF', 'NO', 'ONE');
    await write;
    expect(outcome).toBe('resolved OK');
    expect(await admin.get('turn')).toBe('after');
  });
});
