import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TelegramAdapter } from '../../../../src/channels/telegram/telegram-adapter.js';
import { type FakeTelegram, startFakeTelegram } from '../../../fakes/fake-telegram.js';
import { createAdapter, RecordingSink, waitUntil } from './telegram-harness.js';

const GROUP = -4001;
const SUPERGROUP = -1002003004005;

describe('Telegram groups and commands', () => {
  let fake: FakeTelegram;
  let adapter: TelegramAdapter;
  let sink: RecordingSink;

  beforeAll(async () => {
    fake = await startFakeTelegram({ botUsername: 'agent_bot' });
    adapter = createAdapter(fake);
    sink = new RecordingSink();
    await adapter.start(sink, []);
  });

  afterAll(async () => {
    await adapter.stop();
    await fake.close();
  });

  beforeEach(() => {
    sink.events.length = 0;
  });

  /** Pushes the updates, then a private marker, and returns the texts the sink got before it. */
  async function handled(push: () => void): Promise<string[]> {
    push();
    const marker = fake.pushText(9, 9, 'marker');
    await waitUntil(() => fake.acknowledgedUpTo >= marker.update_id, 'the marker');
    return sink.events.map((e) => e.text).filter((t) => t !== 'marker');
  }

  it('ignores group messages that do not address the bot', async () => {
    const texts = await handled(() => {
      fake.pushText(GROUP, 11, 'just chatting');
      fake.pushText(GROUP, 11, 'hey @someone_else look');
      fake.pushText(GROUP, 11, '/help');
      fake.pushText(SUPERGROUP, 11, 'ask @agent_botx something');
    });
    expect(texts).toEqual([]);
  });

  it('answers a mention, with the mention stripped', async () => {
    const texts = await handled(() => {
      fake.pushText(GROUP, 11, '@agent_bot what is 2+2?');
      fake.pushText(SUPERGROUP, 12, 'tell me, @Agent_Bot, a joke');
      fake.pushText(GROUP, 13, 'thanks @agent_bot!');
    });
    expect(texts).toEqual(['what is 2+2?', 'tell me a joke', 'thanks!']);
  });

  it('answers a reply to one of its messages', async () => {
    const texts = await handled(() => {
      fake.pushText(SUPERGROUP, 14, 'and in French?', { chatType: 'supergroup', replyToBotMessage: true });
    });
    expect(texts).toEqual(['and in French?']);
    expect(sink.events[0]?.address).toMatchObject({ conversation: String(SUPERGROUP) });
    expect(sink.events[0]?.userId).toBe('14');
  });

  it('does not answer a reply to someone else', async () => {
    const other = fake.pushText(GROUP, 15, 'my own message', { chatType: 'group' });
    const texts = await handled(() => {
      fake.pushText(GROUP, 16, 'I agree', {
        chatType: 'group',
        replyTo: other.message?.message_id as number,
      });
    });
    expect(texts).toEqual([]);
  });

  it('normalises /cmd@botname to /cmd and ignores commands for other bots', async () => {
    const texts = await handled(() => {
      fake.pushText(GROUP, 17, '/reset@agent_bot now please', { chatType: 'group' });
      fake.pushText(GROUP, 17, '/status@AGENT_BOT', { chatType: 'group' });
      fake.pushText(GROUP, 17, '/reset@other_bot', { chatType: 'group' });
      fake.pushText(21, 21, '/help@agent_bot');
      fake.pushText(21, 21, '/help');
      fake.pushText(21, 21, '/help@other_bot');
    });
    expect(texts).toEqual(['/reset now please', '/status', '/help', '/help']);
  });

  it('ignores messages from bots, without text, and payloads that are not updates', async () => {
    const texts = await handled(() => {
      fake.pushUpdate({
        message: {
          message_id: 1,
          from: { id: 99, is_bot: true, first_name: 'Other bot' },
          chat: { id: 99, type: 'private' },
          date: 0,
          text: 'beep',
        },
      });
      fake.pushUpdate({
        message: {
          message_id: 2,
          from: { id: 5, is_bot: false, first_name: 'A' },
          chat: { id: 5, type: 'private' },
          date: 0,
        },
      });
      fake.pushUpdate({ message: { message_id: 'x', chat: 'nope' } as never });
      fake.pushUpdate({ edited_message: { message_id: 3 } });
    });
    expect(texts).toEqual([]);
  });
});
