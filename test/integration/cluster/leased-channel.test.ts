import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeasedChannel } from '../../../src/channels/leased-channel.js';
import { TelegramAdapter } from '../../../src/channels/telegram/telegram-adapter.js';
import { Cluster } from '../../../src/core/cluster/cluster.js';
import { CLUSTER_DEFAULTS } from '../../../src/core/cluster/cluster-config.js';
import { type FakeTelegram, startFakeTelegram } from '../../fakes/fake-telegram.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { RecordingSink, telegramConfig } from '../channels/telegram/telegram-harness.js';

const logger = pino({ level: 'silent' });

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Two nodes (in this process, each with its own Redis connection) share one Telegram bot. Each
 * node reaches "Telegram" at its own fake, so one node's route to the platform can break while
 * the other's works.
 */
describe('a leased channel across two nodes', () => {
  let redis: TestRedis;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function node(name: string, telegram: FakeTelegram, keyPrefix: string) {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const cluster = new Cluster({
      redis: client,
      keyPrefix,
      config: { ...CLUSTER_DEFAULTS, leaseTtlMs: 1000, heartbeatEveryMs: 100 },
      node: name,
      version: 'test',
      logger,
    });
    await cluster.start();
    const create = () =>
      new TelegramAdapter({
        config: telegramConfig(telegram),
        logger,
        backoff: { initialMs: 50, maxMs: 200 },
      });
    const channel = new LeasedChannel({
      name: 'telegram',
      sender: create(),
      create,
      lease: cluster.lease('channel:telegram'),
      logger,
    });
    const sink = new RecordingSink();
    await channel.start(sink, []);
    stops.push(async () => {
      await channel.stop();
      await cluster.stop();
      client.disconnect();
    });
    return { channel, cluster, sink };
  }

  it('serves from one node only; a standby sends replies but does not poll', async () => {
    const telegram = await startFakeTelegram();
    stops.push(() => telegram.close());
    const a = await node('a', telegram, 'one-holder');
    const b = await node('b', telegram, 'one-holder');
    await until('a to connect', () => a.channel.health().connected);
    expect(a.channel.health().role).toBe('active');
    expect(b.channel.health()).toMatchObject({ role: 'standby', connected: false });

    telegram.pushText(10, 10, 'hello');
    await until('the update to be accepted', () => a.sink.events.length === 1);
    expect(b.sink.events).toHaveLength(0);
    // The standby delivers a reply over the Bot API without holding the poll.
    await b.channel.send({ channel: 'telegram', conversation: '10' }, 'from b');
    expect(telegram.sent.map((m) => m.text)).toEqual(['from b']);
    expect(telegram.conflicts).toBe(0);
  });

  it('hands the connection over when the holder cannot reach the platform and another node is up', async () => {
    const reachableFromA = await startFakeTelegram();
    const reachableFromB = await startFakeTelegram({ token: reachableFromA.token });
    stops.push(
      () => reachableFromA.close(),
      () => reachableFromB.close(),
    );
    const a = await node('a', reachableFromA, 'hand-over');
    const b = await node('b', reachableFromB, 'hand-over');
    await until('a to connect', () => a.channel.health().connected);

    // a's route to Telegram breaks.
    await reachableFromA.down();
    await until('a to notice', () => !a.channel.health().connected);
    expect(await a.channel.checkHealth(300, true)).toBe('disconnected');
    // Not yet long enough; and with no other node up it would keep trying itself.
    await sleep(350);
    expect(await a.channel.checkHealth(300, false)).toBe('disconnected');
    expect(await a.channel.checkHealth(300, true)).toBe('handed over');

    await until('b to take the connection and connect', () => b.channel.health().connected);
    expect(b.channel.health().role).toBe('active');
    expect(a.channel.health().role).toBe('standby');
    reachableFromB.pushText(20, 20, 'after the hand-over');
    await until('b to accept it', () => b.sink.events.length === 1);
    expect(b.sink.events[0]?.text).toBe('after the hand-over');
    // a stays out of the contest while paused, even though the lease is held by b anyway.
    expect(await a.channel.checkHealth(300, true)).toBe('standby');
  });
});
