import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TelegramAdapter } from '../../../../src/channels/telegram/telegram-adapter.js';
import { type FakeTelegram, startFakeTelegram } from '../../../fakes/fake-telegram.js';
import { COMMANDS, createAdapter, RecordingSink, waitUntil } from './telegram-harness.js';

describe('Telegram round trip (polling)', () => {
  let fake: FakeTelegram;
  let adapter: TelegramAdapter;
  let sink: RecordingSink;

  beforeEach(async () => {
    fake = await startFakeTelegram();
    adapter = createAdapter(fake);
    sink = new RecordingSink();
  });

  afterEach(async () => {
    await adapter.stop();
    await fake.close();
  });

  it('hands a private message to the sink and delivers the reply to it', async () => {
    await adapter.start(sink, COMMANDS);
    const update = fake.pushText(501, 501, 'Hello <agent> & friends');
    await waitUntil(() => sink.events.length === 1, 'the event');

    const message = update.message as NonNullable<typeof update.message>;
    expect(sink.events[0]).toEqual({
      eventId: `501:${message.message_id}`,
      userId: '501',
      text: 'Hello <agent> & friends',
      address: { channel: 'telegram', conversation: '501', thread: String(message.message_id) },
    });
    expect(adapter.health()).toMatchObject({ connected: true, consecutiveSendFailures: 0 });
    expect(adapter.health().lastEventAt).toBeTypeOf('number');

    await adapter.send(sink.events[0]?.address as never, 'Hi <you> & "all"');
    expect(fake.sent).toHaveLength(1);
    expect(fake.sent[0]).toMatchObject({
      chatId: 501,
      parseMode: 'HTML',
      source: 'Hi &lt;you&gt; &amp; "all"',
      text: 'Hi <you> & "all"',
      replyTo: message.message_id,
    });
    expect(adapter.health().lastSendAt).toBeTypeOf('number');
  });

  it('acknowledges the update once the sink accepted it, and never delivers it again', async () => {
    await adapter.start(sink, []);
    const first = fake.pushText(7, 7, 'one');
    await waitUntil(() => fake.acknowledgedUpTo >= first.update_id, 'the acknowledgement');
    const second = fake.pushText(7, 7, 'two');
    await waitUntil(() => fake.acknowledgedUpTo >= second.update_id, 'the second acknowledgement');
    // Polls after the acknowledgement return nothing old.
    const polls = fake.getUpdatesCalls;
    await waitUntil(() => fake.getUpdatesCalls > polls + 1, 'two more polls', 4_000);
    expect(sink.events.map((e) => e.text)).toEqual(['one', 'two']);
    expect(fake.deliveries.get(first.update_id)).toBe(1);
    expect(fake.deliveries.get(second.update_id)).toBe(1);
    expect(fake.pending).toHaveLength(0);
  });

  it('publishes the command menu, leaving out names Telegram refuses', async () => {
    await adapter.start(sink, [...COMMANDS, { name: 'Bad-Name', summary: 'refused by Telegram' }]);
    await waitUntil(() => fake.commands !== undefined, 'setMyCommands');
    expect(fake.commands).toEqual([
      { command: 'help', description: 'What I can do' },
      { command: 'reset', description: 'Start a fresh conversation' },
    ]);
  });

  it('publishes the menu again after a reconnect when the first attempt failed', async () => {
    fake.failNext('setMyCommands', 1, { error_code: 500, description: 'Internal Server Error' });
    await adapter.start(sink, COMMANDS);
    await waitUntil(() => fake.calls.some((c) => c.method === 'setMyCommands'), 'the first attempt');
    expect(fake.commands).toBeUndefined();
    await fake.down();
    await waitUntil(() => !adapter.health().connected, 'the disconnect');
    await fake.up();
    await waitUntil(() => fake.commands !== undefined, 'the second attempt');
    expect(fake.commands?.map((c) => c.command)).toEqual(['help', 'reset']);
  });

  it('shows typing, and typing never throws', async () => {
    await adapter.start(sink, []);
    fake.pushText(42, 42, 'hi');
    await waitUntil(() => sink.events.length === 1, 'the event');
    await adapter.typing(sink.events[0]?.address as never);
    expect(fake.actions).toEqual([{ chatId: 42, action: 'typing' }]);
    await fake.down();
    await expect(adapter.typing({ channel: 'telegram', conversation: '42' })).resolves.toBeUndefined();
  });

  it('stops promptly and idempotently', async () => {
    await adapter.start(sink, []);
    await waitUntil(() => adapter.health().connected, 'the connection');
    const started = Date.now();
    await Promise.all([adapter.stop(), adapter.stop()]);
    await adapter.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(adapter.health().connected).toBe(false);
    const polls = fake.getUpdatesCalls;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.getUpdatesCalls).toBe(polls);
  });
});
