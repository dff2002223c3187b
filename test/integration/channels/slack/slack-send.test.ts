import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChannelSendError } from '../../../../src/channels/channel-adapter.js';
import { unescapeSlackText } from '../../../../src/channels/slack/slack-text.js';
import { type FakeSlack, startFakeSlack } from '../../../fakes/fake-slack.js';
import { newAdapter, recordingSink } from './slack-harness.js';

const thread = { channel: 'slack', conversation: 'C0GENERAL', thread: '1700000000.000100' } as const;

async function sendError(promise: Promise<void>): Promise<ChannelSendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ChannelSendError);
  return error as ChannelSendError;
}

describe('Slack adapter: sending replies', () => {
  let fake: FakeSlack;
  let adapter: ReturnType<typeof newAdapter>;

  beforeAll(async () => {
    fake = await startFakeSlack();
    adapter = newAdapter(fake);
    await adapter.start(recordingSink(), []);
  });
  afterAll(async () => {
    await adapter.stop();
    await fake.close();
  });
  beforeEach(() => {
    fake.posted.length = 0;
  });

  it('splits a 9,000-character reply into parts of at most 3,900, in order, in the thread, with balanced fences and nothing lost', async () => {
    const prose = (n: number) =>
      Array.from({ length: n }, (_, i) => `Sentence ${i} says that a < b & c > d, more or less.`).join(' ');
    const code = Array.from(
      { length: 90 },
      (_, i) => `const value${i} = compute(${i}) && check(${i}); // <ok>`,
    ).join('\n');
    const text = `${prose(45)}\n\n\`\`\`ts\n${code}\n\`\`\`\n\n${prose(70)}`;
    expect(text.length).toBeGreaterThan(9_000);

    await adapter.send(thread, text);

    expect(fake.posted.length).toBeGreaterThanOrEqual(3);
    for (const part of fake.posted) {
      expect(part.text.length).toBeLessThanOrEqual(3_900);
      expect(part.thread_ts).toBe(thread.thread);
      expect(part.channel).toBe('C0GENERAL');
      // Every part renders on its own: its code fences are balanced.
      expect((part.text.match(/^```/gm) ?? []).length % 2).toBe(0);
      // Slack's control characters arrive escaped, so no part can ping a channel.
      expect(part.text).not.toMatch(/[<>]/);
    }
    const received = fake.posted.map((p) => unescapeSlackText(p.text));
    // Reassembled without the fences added at the cuts, every word is there, in order.
    const words = (s: string) =>
      s
        .replace(/```(ts)?/g, ' ')
        .split(/\s+/)
        .filter(Boolean);
    expect(words(received.join('\n'))).toEqual(words(text));
  });

  it('turns a 429 into a retryable ChannelSendError with Retry-After, and counts the failure', async () => {
    fake.rateLimitNext(1, 7);
    const error = await sendError(adapter.send(thread, 'hello'));
    expect(error.retryAfterMs).toBe(7_000);
    expect(error.permanent).toBe(false);
    expect(adapter.health().consecutiveSendFailures).toBe(1);
    expect(fake.posted).toEqual([]);

    // No hidden retry inside the client: the next send is a new call and succeeds.
    await adapter.send(thread, 'hello again');
    expect(fake.posted.map((p) => p.text)).toEqual(['hello again']);
    expect(adapter.health().consecutiveSendFailures).toBe(0);
  });

  it.each(['not_in_channel', 'channel_not_found', 'invalid_auth', 'account_inactive'])(
    'treats %s as permanent',
    async (code) => {
      fake.failNext('chat.postMessage', code);
      const error = await sendError(adapter.send(thread, 'x'));
      expect(error.permanent).toBe(true);
      expect(error.message).toContain(code);
    },
  );

  it('treats a Slack-side error as retryable', async () => {
    fake.failNext('chat.postMessage', 'internal_error');
    const error = await sendError(adapter.send(thread, 'x'));
    expect(error.permanent).toBe(false);
  });

  it('treats an unreachable Slack as retryable', async () => {
    const down = newAdapter(fake, { apiUrl: 'http://127.0.0.1:9/api/' });
    const error = await sendError(down.send(thread, 'x'));
    expect(error.permanent).toBe(false);
    expect(error.retryAfterMs).toBeUndefined();
    expect(down.health().lastError).toMatch(/unreachable/);
  });

  it('a delivery re-run after a crash posts only the parts that are not in the conversation yet', async () => {
    const long = Array.from({ length: 700 }, (_, i) => `word${i}`).join(' ');
    const replyId = 'slack:Ev0RERUN';
    await adapter.send(thread, long, { replyId });
    const firstAttempt = fake.posted.length;
    expect(firstAttempt).toBeGreaterThan(1);
    expect(fake.posted.map((m) => m.metadata)).toEqual(
      fake.posted.map((_, part) => ({
        event_type: 'agent_reply',
        event_payload: { reply_id: replyId, part },
      })),
    );

    // The crash cut the first attempt off after it had posted everything: nothing is posted again.
    await adapter.send(thread, long, { replyId, mayRepeat: true });
    expect(fake.posted).toHaveLength(firstAttempt);

    // ...after it had posted only the first part: the rest is posted, the first part not again.
    fake.posted.splice(1);
    await adapter.send(thread, long, { replyId, mayRepeat: true });
    expect(fake.posted.map((m) => m.metadata?.event_payload.part)).toEqual(
      Array.from({ length: firstAttempt }, (_, part) => part),
    );

    // Without the crash flag nothing is read back: an ordinary retry posts the reply.
    await adapter.send(thread, 'short', { replyId: 'slack:Ev0OTHER' });
    await adapter.send(thread, 'short', { replyId: 'slack:Ev0OTHER' });
    expect(fake.posted.filter((m) => m.text === 'short')).toHaveLength(2);
  });
});
