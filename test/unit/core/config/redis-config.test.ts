import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectSecrets, loadConfig, redactConfig } from '../../../../src/core/config/load-config.js';
import { isRedisConfigured } from '../../../../src/core/redis/redis-connection.js';
import { configError, emptyDir, withFile } from './config-dirs.js';

describe('redis Sentinel configuration', () => {
  it('reads REDIS_SENTINELS as a comma-separated host:port list, with the master name defaulted', () => {
    const config = loadConfig({
      env: { REDIS_SENTINELS: ' 10.0.0.1:26379, sentinel-b.internal:26380 ,,[::1]:26381' },
      cwd: emptyDir(),
    });
    expect(config.redis.sentinels).toEqual(['10.0.0.1:26379', 'sentinel-b.internal:26380', '[::1]:26381']);
    expect(config.redis.masterName).toBe('mymaster');
    expect(config.redis.url).toBeUndefined();
    expect(isRedisConfigured(config)).toBe(true);
  });

  it('has no sentinels, and Redis is not configured, on the defaults', () => {
    const config = loadConfig({ env: {}, cwd: emptyDir() });
    expect(config.redis).toEqual({
      keyPrefix: 'agent',
      masterName: 'mymaster',
      snapshot: { everyMs: 60_000, maxPersons: 5000 },
    });
    expect(isRedisConfigured(config)).toBe(false);
    expect(isRedisConfigured(loadConfig({ env: { REDIS_URL: 'redis://h:6379' }, cwd: emptyDir() }))).toBe(
      true,
    );
  });

  it('takes the master name and both passwords from the environment, or from _FILE', () => {
    const dir = emptyDir();
    writeFileSync(join(dir, 'sentinel-pass'), 'sentinel-secret-42\n');
    const config = loadConfig({
      env: {
        REDIS_SENTINELS: '127.0.0.1:26379',
        REDIS_MASTER_NAME: 'agent-primary',
        REDIS_PASSWORD: 'primary-secret-41',
        REDIS_SENTINEL_PASSWORD_FILE: join(dir, 'sentinel-pass'),
      },
      cwd: dir,
    });
    expect(config.redis).toMatchObject({
      sentinels: ['127.0.0.1:26379'],
      masterName: 'agent-primary',
      password: 'primary-secret-41',
      sentinelPassword: 'sentinel-secret-42',
    });
  });

  it('reads sentinels from the config file, with the environment on top', () => {
    const file = { redis: { sentinels: ['a:1', 'b:2'], masterName: 'from-file' } };
    const cwd = withFile(file);
    expect(loadConfig({ env: {}, cwd }).redis).toMatchObject({
      sentinels: ['a:1', 'b:2'],
      masterName: 'from-file',
    });
    expect(loadConfig({ env: { REDIS_SENTINELS: 'c:3' }, cwd }).redis.sentinels).toEqual(['c:3']);
  });

  it('masks both passwords in the redacted view and hands them to the log redactor', () => {
    const config = loadConfig({
      env: {
        REDIS_SENTINELS: '127.0.0.1:26379',
        REDIS_PASSWORD: 'primary-secret-41',
        REDIS_SENTINEL_PASSWORD: 'sentinel-secret-42',
      },
      cwd: emptyDir(),
    });
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('primary-secret-41');
    expect(shown).not.toContain('sentinel-secret-42');
    expect(shown).toContain('127.0.0.1:26379');
    expect(collectSecrets(config)).toEqual(
      expect.arrayContaining(['primary-secret-41', 'sentinel-secret-42']),
    );
  });

  const cases: {
    name: string;
    env?: Record<string, string>;
    file?: unknown;
    key: string;
    text: RegExp;
    source?: string;
  }[] = [
    {
      name: 'both a URL and sentinels',
      env: { REDIS_URL: 'redis://h:6379', REDIS_SENTINELS: 'h:26379' },
      key: 'redis.sentinels',
      text: /together with redis\.url[\s\S]*fix: unset REDIS_URL to use Sentinel, or unset REDIS_SENTINELS/,
      source: 'REDIS_SENTINELS',
    },
    {
      name: 'a sentinel without a port',
      env: { REDIS_SENTINELS: '10.0.0.1:26379,10.0.0.2' },
      key: 'redis.sentinels.1',
      text: /host:port[\s\S]*fix: set REDIS_SENTINELS to comma-separated host:port pairs/,
      source: 'REDIS_SENTINELS',
    },
    {
      name: 'a sentinel port out of range',
      env: { REDIS_SENTINELS: 'h:70000' },
      key: 'redis.sentinels.0',
      text: /host:port/,
    },
    {
      name: 'a sentinel without a host',
      env: { REDIS_SENTINELS: ':26379' },
      key: 'redis.sentinels.0',
      text: /host:port/,
    },
    {
      name: 'a sentinel given as a URL',
      file: { redis: { sentinels: ['redis://h:26379'] } },
      key: 'redis.sentinels.0',
      text: /host:port/,
      source: 'config file',
    },
    {
      name: 'an empty sentinel list',
      env: { REDIS_SENTINELS: ' , ' },
      key: 'redis.sentinels',
      text: /at least one/,
    },
    {
      name: 'a master name with a space',
      env: { REDIS_SENTINELS: 'h:26379', REDIS_MASTER_NAME: 'my master' },
      key: 'redis.masterName',
      text: /letters, digits[\s\S]*REDIS_MASTER_NAME/,
    },
    {
      name: 'a sentinel password without sentinels',
      env: { REDIS_URL: 'redis://h:6379', REDIS_SENTINEL_PASSWORD: 'sentinel-secret-42' },
      key: 'redis.sentinelPassword',
      text: /redis\.sentinels is not[\s\S]*REDIS_SENTINELS/,
    },
    {
      name: 'a password in both REDIS_URL and REDIS_PASSWORD',
      env: { REDIS_URL: 'redis://:in-url-secret@h:6379', REDIS_PASSWORD: 'primary-secret-41' },
      key: 'redis.password',
      text: /carries a password too[\s\S]*in REDIS_URL or in REDIS_PASSWORD/,
    },
    {
      name: 'a password with no Redis configured',
      env: { REDIS_PASSWORD: 'primary-secret-41' },
      key: 'redis.password',
      text: /neither redis\.url nor redis\.sentinels/,
    },
  ];

  it.each(cases)('reports $name with the key, the value and a fix', ({ env, file, key, text, source }) => {
    const error = configError(env ?? {}, file);
    const problem = error.problems.find((p) => p.key === key);
    expect(problem, `problems were: ${error.message}`).toBeDefined();
    expect(`${problem?.problem} fix: ${problem?.fix}`).toMatch(text);
    if (source) expect(problem?.source).toBe(source);
    expect(error.message).toContain(key);
  });

  it('never shows a Redis password in an error', () => {
    const error = configError({
      REDIS_URL: 'redis://:in-url-secret@h:6379',
      REDIS_PASSWORD: 'primary-secret-41',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret-42',
    });
    expect(error.problems.map((p) => p.key)).toEqual(
      expect.arrayContaining(['redis.password', 'redis.sentinelPassword']),
    );
    expect(error.message).not.toMatch(/in-url-secret|primary-secret-41|sentinel-secret-42/);
  });
});
