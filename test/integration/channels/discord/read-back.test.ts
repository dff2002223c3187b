import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisDiscordCursorStore } from '../../../../src/channels/discord/redis-cursor-store.js';
import { type FakeDiscord, startFakeDiscord } from '../../../fakes/fake-discord.js';
import { startRedis, type TestRedis } from '../../../support/redis-server.js';
import { connected, eventually, guildChannel, startAdapter } from './discord-harness.js';

describe('Discord read-back: a new gateway session reads what was posted while none was connected', () => {
  let fake: FakeDiscord;
  let redis: TestRedis;
  let client: Redis;

  beforeAll(async () => {
    fake = await startFakeDiscord();
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client.disconnect();
    await fake.close();
    await redis.stop();
  });

  it('hands on the missed messages (DMs, and guild mentions only) once a new adapter connects', async () => {
    const cursors = new RedisDiscordCursorStore(client, 'readback');
    const dm = fake.dmChannelFor('300');
    const guild = guildChannel(fake);

    const first = await startAdapter(fake, { cursors });
    await connected(first.adapter);
    fake.sendMessageCreate({ channelId: dm, authorId: '300', content: 'before the gap' });
    fake.sendMessageCreate({ channelId: guild, authorId: '301', content: 'hello', mentionsBot: true });
    await eventually(() => expect(first.sink.events.map((e) => e.text)).toEqual(['before the gap', 'hello']));
    // The cursors moved past what was accepted.
    await eventually(async () => expect((await cursors.recent(60_000)).length).toBe(2));
    await first.adapter.stop();

    // Posted while no session is connected: Discord delivers these to nobody.
    const missedDm = fake.sendMessageCreate({ channelId: dm, authorId: '300', content: 'during the gap' });
    const missedMention = fake.sendMessageCreate({
      channelId: guild,
      authorId: '301',
      content: 'are you there?',
      mentionsBot: true,
    });
    fake.sendMessageCreate({ channelId: guild, authorId: '301', content: 'chatting, not to the bot' });
    expect(fake.deliveredMessages.has(missedDm)).toBe(false);

    const second = await startAdapter(fake, { cursors });
    try {
      await connected(second.adapter);
      await eventually(() => {
        const ids = second.sink.events.map((e) => e.eventId);
        expect(ids).toContain(missedDm);
        expect(ids).toContain(missedMention);
      });
      const texts = second.sink.events.map((e) => e.text);
      // The guild message without a mention is not for the agent; the bot's own messages neither.
      expect(texts).not.toContain('chatting, not to the bot');
      // Messages just before the cursor are read again (they may have been in hand when the
      // other server died); the agent's dedupe by event id answers each once.
      expect(new Set(texts)).toEqual(
        new Set(['before the gap', 'hello', 'during the gap', 'are you there?']),
      );
      const missed = second.sink.events.find((e) => e.eventId === missedDm);
      expect(missed?.address).toEqual({ channel: 'discord', conversation: dm, thread: missedDm });
    } finally {
      await second.adapter.stop();
    }
  });

  it('moves a cursor only forward and drops channels quiet for too long', async () => {
    const cursors = new RedisDiscordCursorStore(client, 'cursor-rules');
    // Snowflakes made now and a little later (ids from the fake are made from the clock).
    const older = fake.sendMessageCreate({
      channelId: fake.dmChannelFor('400'),
      authorId: '400',
      content: 'a',
    });
    const newer = fake.sendMessageCreate({
      channelId: fake.dmChannelFor('400'),
      authorId: '400',
      content: 'b',
    });
    await cursors.advance('c1', newer, null);
    await cursors.advance('c1', older, null);
    expect(await cursors.recent(60_000)).toEqual([{ channelId: 'c1', messageId: newer, guildId: null }]);
    const stale = new RedisDiscordCursorStore(client, 'cursor-rules', () => Date.now() + 120_000);
    expect(await stale.recent(60_000)).toEqual([]);
    expect(await client.hlen('cursor-rules:discord:cursors')).toBe(0);
  });
});
