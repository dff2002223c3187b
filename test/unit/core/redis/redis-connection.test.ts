import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../src/core/config/load-config.js';
import { reconnectOnReadonly, redisConnectionOptions } from '../../../../src/core/redis/redis-connection.js';

const redisConfig = (env: Record<string, string>) =>
  loadConfig({ env, cwd: mkdtempSync(join(tmpdir(), 'agent-redis-options-')) }).redis;

describe('redisConnectionOptions', () => {
  it('is undefined when Redis is not configured', () => {
    expect(redisConnectionOptions(redisConfig({}))).toBeUndefined();
  });

  it('parses host, port, credentials, database and TLS from a URL', () => {
    const options = redisConnectionOptions(
      redisConfig({ REDIS_URL: 'rediss://agent:p%40ss@redis.internal:6380/2' }),
    );
    expect(options).toMatchObject({
      host: 'redis.internal',
      port: 6380,
      username: 'agent',
      password: 'p@ss',
      db: 2,
      tls: {},
    });
    expect(options?.sentinels).toBeUndefined();
    expect(redisConnectionOptions(redisConfig({ REDIS_URL: 'redis://[::1]' }))).toMatchObject({
      host: '::1',
      port: 6379,
    });
  });

  it('uses REDIS_PASSWORD for a URL that carries none', () => {
    const options = redisConnectionOptions(
      redisConfig({ REDIS_URL: 'redis://h:6379', REDIS_PASSWORD: 'primary-secret-41' }),
    );
    expect(options?.password).toBe('primary-secret-41');
  });

  it('lists the sentinels, the master name and both passwords for Sentinel', () => {
    const options = redisConnectionOptions(
      redisConfig({
        REDIS_SENTINELS: '10.0.0.1:26379,[::1]:26380',
        REDIS_MASTER_NAME: 'agent-primary',
        REDIS_PASSWORD: 'primary-secret-41',
        REDIS_SENTINEL_PASSWORD: 'sentinel-secret-42',
      }),
    );
    expect(options).toMatchObject({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'agent-primary',
      password: 'primary-secret-41',
      sentinelPassword: 'sentinel-secret-42',
    });
    expect(options?.host).toBeUndefined();
  });

  it.each([
    ['URL', { REDIS_URL: 'redis://h:6379' }],
    ['Sentinel', { REDIS_SENTINELS: 'h:26379' }],
  ])('reconnects and resends on READONLY, and only then (%s)', (_mode, env) => {
    const options = redisConnectionOptions(redisConfig(env));
    const readonly = new Error("READONLY You can't write against a read only replica.");
    expect(options?.reconnectOnError?.(readonly)).toBe(2);
    expect(options?.reconnectOnError?.(new Error('ERR wrong number of arguments'))).toBe(false);
    expect(options?.reconnectOnError?.(new Error('NOAUTH Authentication required.'))).toBe(false);
  });

  it.each([
    ['URL', { REDIS_URL: 'redis://h:6379' }],
    ['Sentinel', { REDIS_SENTINELS: 'h:26379' }],
  ])(
    'states a reconnect back-off capped at 2 s, which BullMQ keeps instead of its own (%s)',
    (_mode, env) => {
      const retry = redisConnectionOptions(redisConfig(env))?.retryStrategy;
      expect([1, 10, 40, 1000].map((attempt) => retry?.(attempt))).toEqual([50, 500, 2000, 2000]);
    },
  );

  it('treats a READONLY raised inside a script the same way', () => {
    expect(
      reconnectOnReadonly(
        new Error("READONLY You can't write against a read only replica. script: abc, on @user_script:1."),
      ),
    ).toBe(2);
  });
});
