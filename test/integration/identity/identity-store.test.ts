import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdentityStore } from '../../../src/core/identity/identity-store.js';
import { LogIdentityStore } from '../../../src/core/identity/log-identity-store.js';
import { RedisIdentityStore } from '../../../src/core/identity/redis-identity-store.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';

let redis: TestRedis;
let client: Redis;
let clock = 1_000_000;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

let n = 0;
/** `open(place)` opens a store on `place` (a data directory or a key prefix); the same place reopens it. */
const backends: { name: string; place: () => string; open: (place: string) => IdentityStore }[] = [
  {
    name: 'log',
    place: () => mkdtempSync(join(tmpdir(), 'identity-')),
    open: (dataDir) => new LogIdentityStore({ dataDir, logger, now: () => clock }),
  },
  {
    name: 'redis',
    place: () => `id-test-${++n}`,
    open: (keyPrefix) => new RedisIdentityStore({ redis: client, keyPrefix }),
  },
];

describe.each(backends)('identity store: $name', (backend) => {
  it('keeps each account its own person until linked', async () => {
    const store = backend.open(backend.place());
    await store.open();
    expect(await store.resolve('telegram', '1')).toBe('telegram:1');
    expect(await store.resolve('discord', '1')).toBe('discord:1');
    await store.close();
  });

  it('links with a one-time code, and unlinks', async () => {
    const store = backend.open(backend.place());
    await store.open();
    const code = await store.issueLinkCode('telegram:1', 600_000);
    expect(code).toMatch(/^[A-Z2-9]{8}$/);
    // Typed loosely: lower case with a dash still works.
    const loose = `${code.slice(0, 4).toLowerCase()}-${code.slice(4)}`;
    expect(await store.redeemLinkCode(loose, 'discord', '2')).toEqual({
      status: 'linked',
      personId: 'telegram:1',
      previousPersonId: 'discord:2',
    });
    expect(await store.resolve('discord', '2')).toBe('telegram:1');
    // Single use.
    expect(await store.redeemLinkCode(code, 'slack', '3')).toEqual({ status: 'invalid_code' });
    expect(await store.resolve('slack', '3')).toBe('slack:3');
    // The person's addresses, most recent first.
    await store.touch('telegram', '1', { channel: 'telegram', conversation: 't' }, 10);
    await store.touch('discord', '2', { channel: 'discord', conversation: 'd' }, 20);
    await store.touch('slack', '3', { channel: 'slack', conversation: 's' }, 30);
    expect((await store.addresses('telegram:1')).map((a) => a.address.conversation)).toEqual(['d', 't']);

    expect(await store.unlink('discord', '2')).toBe(true);
    expect(await store.unlink('discord', '2')).toBe(false);
    expect(await store.resolve('discord', '2')).toBe('discord:2');
    expect((await store.addresses('telegram:1')).map((a) => a.address.conversation)).toEqual(['t']);
    await store.close();
  });

  it('refuses an unknown or expired code, and a code redeemed by its own person changes nothing', async () => {
    const store = backend.open(backend.place());
    await store.open();
    expect(await store.redeemLinkCode('NOPE2345', 'discord', '2')).toEqual({ status: 'invalid_code' });
    const own = await store.issueLinkCode('telegram:1', 600_000);
    expect(await store.redeemLinkCode(own, 'telegram', '1')).toEqual({
      status: 'already_linked',
      personId: 'telegram:1',
    });
    const short = await store.issueLinkCode('telegram:1', 50);
    clock += 100;
    await new Promise((r) => setTimeout(r, 100));
    expect(await store.redeemLinkCode(short, 'discord', '2')).toEqual({ status: 'invalid_code' });
    expect(await store.resolve('discord', '2')).toBe('discord:2');
    await store.close();
  });

  it('keeps links and addresses across a restart', async () => {
    const place = backend.place();
    const store = backend.open(place);
    await store.open();
    const code = await store.issueLinkCode('telegram:1', 600_000);
    await store.redeemLinkCode(code, 'discord', '2');
    await store.touch('discord', '2', { channel: 'discord', conversation: 'd' }, 20);
    await store.close();
    const again = backend.open(place);
    await again.open();
    expect(await again.resolve('discord', '2')).toBe('telegram:1');
    expect((await again.addresses('telegram:1')).map((a) => a.account)).toEqual(['discord:2']);
    await again.close();
  });
});
