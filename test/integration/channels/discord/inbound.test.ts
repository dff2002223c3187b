import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDiscord, startFakeDiscord } from '../../../fakes/fake-discord.js';
import {
  connected,
  defined,
  eventually,
  guildChannel,
  type Started,
  startAdapter,
} from './discord-harness.js';

let fake: FakeDiscord;
let run: Started;
const USER = '300000000000000001';

beforeAll(async () => {
  fake = await startFakeDiscord();
});
afterAll(async () => {
  await fake.close();
});
afterEach(async () => {
  await run?.adapter.stop();
});

describe('discord inbound', () => {
  it('delivers a DM and sends the reply back as a reply to it', async () => {
    run = await startAdapter(fake);
    await connected(run.adapter);
    const dm = '400000000000000001';
    const messageId = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'hello there' });
    const [event] = await eventually(() => {
      expect(run.sink.events).toHaveLength(1);
      return run.sink.events;
    });
    expect(event).toEqual({
      eventId: messageId,
      userId: USER,
      text: 'hello there',
      address: { channel: 'discord', conversation: dm, thread: messageId },
    });
    await run.adapter.send(defined(event, 'an event').address, 'hi back');
    const reply = fake.sent.at(-1);
    expect(reply).toMatchObject({
      channelId: dm,
      content: 'hi back',
      replyTo: messageId,
      failIfNotExists: false,
    });
    expect(run.adapter.health()).toMatchObject({ connected: true, consecutiveSendFailures: 0 });
    expect(run.adapter.health().lastSendAt).toBeTypeOf('number');
  });
});

describe('discord guild messages', () => {
  it('ignores a guild message without a mention and takes one with a mention, stripped', async () => {
    run = await startAdapter(fake);
    await connected(run.adapter);
    const channelId = guildChannel(fake);
    fake.sendMessageCreate({ channelId, authorId: USER, content: 'people talking among themselves' });
    const plain = fake.sendMessageCreate({
      channelId,
      authorId: USER,
      content: 'what is the time?',
      mentionsBot: true,
    });
    const nick = fake.sendMessageCreate({
      channelId,
      authorId: USER,
      content: 'and the date?',
      mentionsBot: 'nick',
    });
    await eventually(() => expect(run.sink.events).toHaveLength(2));
    // Give the unmentioned one (dispatched first) every chance to have shown up.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(run.sink.events.map((e) => [e.eventId, e.text])).toEqual([
      [plain, 'what is the time?'],
      [nick, 'and the date?'],
    ]);
    expect(run.sink.events[0]?.address).toEqual({
      channel: 'discord',
      conversation: channelId,
      thread: plain,
    });
  });

  it('ignores bots, itself included, even when they mention it', async () => {
    run = await startAdapter(fake);
    await connected(run.adapter);
    const channelId = guildChannel(fake);
    fake.sendMessageCreate({
      channelId,
      authorId: '300000000000000099',
      content: 'beep',
      mentionsBot: true,
      authorIsBot: true,
    });
    fake.sendMessageCreate({
      channelId,
      authorId: fake.botId,
      content: 'my own words',
      mentionsBot: true,
      authorIsBot: true,
    });
    const human = fake.sendMessageCreate({
      channelId,
      authorId: USER,
      content: 'a person',
      mentionsBot: true,
    });
    await eventually(() => expect(run.sink.events.map((e) => e.eventId)).toEqual([human]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(run.sink.events).toHaveLength(1);
  });
});

describe('discord hand-off to the agent', () => {
  it('retries receive() with back-off until the agent takes the event', async () => {
    run = await startAdapter(fake);
    await connected(run.adapter);
    run.sink.failNext(2);
    const id = fake.sendMessageCreate({
      channelId: '400000000000000002',
      authorId: USER,
      content: 'keep me',
    });
    await eventually(() => expect(run.sink.events.map((e) => e.eventId)).toEqual([id]));
    expect(run.sink.attempts).toBe(3);
    expect(run.logs.filter((l) => l.msg === 'agent did not accept a discord event; retrying')).toHaveLength(
      2,
    );
    expect(run.logs.some((l) => l.msg.startsWith('discord event lost'))).toBe(false);
  });

  it('logs the event as lost when the agent refuses it for the whole retry window', async () => {
    run = await startAdapter(fake, { backoff: { receiveAttempts: 3 } });
    await connected(run.adapter);
    run.sink.failNext(10);
    const id = fake.sendMessageCreate({ channelId: '400000000000000003', authorId: USER, content: 'lost' });
    const lost = await eventually(() => {
      const line = run.logs.find((l) => l.msg === 'discord event lost: the agent did not accept it');
      expect(line).toBeDefined();
      return defined(line, 'a lost-event log line');
    });
    expect(lost).toMatchObject({ eventId: id, attempts: 3, level: 50 });
    expect(run.sink.attempts).toBe(3);
    expect(run.sink.events).toHaveLength(0);
  });
});
