import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChannelSendError, type ReplyAddress } from '../../../../src/channels/channel-adapter.js';
import { type FakeDiscord, startFakeDiscord } from '../../../fakes/fake-discord.js';
import { type Started, startAdapter } from './discord-harness.js';

let fake: FakeDiscord;
let run: Started;
let channel = 0;
/** A fresh DM channel per test: a 429 leaves its channel's bucket empty for the Retry-After. */
function address(thread?: string): ReplyAddress {
  channel += 1;
  const conversation = fake.dmChannelFor(String(320000000000000000n + BigInt(channel)));
  return { channel: 'discord', conversation, ...(thread !== undefined ? { thread } : {}) };
}

function fences(text: string): number {
  return text.split('\n').filter((line) => /^\s*```/.test(line)).length;
}

beforeAll(async () => {
  fake = await startFakeDiscord();
});
afterAll(async () => {
  await fake.close();
});
afterEach(async () => {
  await run?.adapter.stop();
});

async function sendError(promise: Promise<unknown>): Promise<ChannelSendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ChannelSendError);
  return error as ChannelSendError;
}

// A reply of about 5,000 characters: prose, a long fenced block, more prose.
const code = Array.from(
  { length: 90 },
  (_, i) => `const line${i} = computeSomething(${i}); // step ${i}`,
).join('\n');
const prose = (n: number) =>
  Array.from({ length: n }, (_, i) => `Sentence ${i} explains a little more about the answer.`).join(' ');
const LONG = `${prose(12)}\n\n\`\`\`ts\n${code}\n\`\`\`\n\n${prose(20)}`;

describe('discord send', () => {
  it('splits a long reply with a code block into parts of at most 2,000, fences balanced, nothing lost', async () => {
    expect(LONG.length).toBeGreaterThan(5000);
    run = await startAdapter(fake);
    const inbound = fake.sendMessageCreate({
      channelId: fake.dmChannelFor('320000000000009999'),
      authorId: '320000000000009999',
      content: 'x',
    });
    const to = { ...address(), thread: inbound };
    const before = fake.sent.length;
    await run.adapter.send(to, LONG);
    const parts = fake.sent.slice(before);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const part of parts) {
      expect(part.channelId).toBe(to.conversation);
      expect([...part.content].length).toBeLessThanOrEqual(2000);
      expect(fences(part.content) % 2).toBe(0);
    }
    expect(parts[0]?.replyTo).toBe(inbound);
    expect(parts.slice(1).every((p) => p.replyTo === undefined)).toBe(true);
    // Every code line arrives exactly once, in order.
    const codeLines = parts.flatMap((p) => p.content.split('\n')).filter((l) => l.startsWith('const line'));
    expect(codeLines).toEqual(code.split('\n'));
    // And the words outside the block too.
    const words = (s: string) =>
      s
        .replace(/```(ts)?/g, ' ')
        .split(/\s+/)
        .filter(Boolean);
    expect(words(parts.map((p) => p.content).join('\n'))).toEqual(words(LONG));
    expect(run.adapter.health()).toMatchObject({ consecutiveSendFailures: 0 });
  });

  it('turns a 429 into a retryable ChannelSendError with retryAfterMs, without waiting it out', async () => {
    run = await startAdapter(fake);
    fake.rateLimitNext(1, 30);
    const started = Date.now();
    const error = await sendError(run.adapter.send(address(), 'hello'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error.permanent).toBe(false);
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(30_000);
    expect(error.retryAfterMs).toBeLessThan(31_000);
    expect(run.adapter.health()).toMatchObject({ consecutiveSendFailures: 1 });
    expect(run.adapter.health().lastError).toMatch(/rate limit/);
  });

  it('fails at once on a global 429 too', async () => {
    run = await startAdapter(fake);
    fake.rateLimitNext(1, 12.5, { global: true });
    const started = Date.now();
    const error = await sendError(run.adapter.send(address(), 'hello'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(13_000);
  });

  it('waits out a short 429 inside the send', async () => {
    run = await startAdapter(fake, { maxRateLimitWaitMs: 2000 });
    fake.rateLimitNext(1, 0.3);
    const to = address();
    const before = fake.sent.length;
    await run.adapter.send(to, 'after a short wait');
    expect(fake.sent.slice(before).map((m) => m.content)).toEqual(['after a short wait']);
  });

  it('marks 403 (50007: DMs closed) and 404 (unknown channel) permanent', async () => {
    run = await startAdapter(fake);
    fake.failNext('messages', 1, { status: 403, code: 50007, message: 'Cannot send messages to this user' });
    const closed = await sendError(run.adapter.send(address(), 'hello'));
    expect(closed.permanent).toBe(true);
    expect(closed.message).toMatch(/50007/);
    const unknown = await sendError(
      run.adapter.send({ channel: 'discord', conversation: '999999999999999999' }, 'hello'),
    );
    expect(unknown.permanent).toBe(true);
    expect(unknown.message).toMatch(/10003/);
    expect(run.adapter.health().consecutiveSendFailures).toBe(2);
  });

  it('marks a server error retryable, and a retry after a partial send repeats no part', async () => {
    run = await startAdapter(fake);
    const to = address();
    const text = `${'a'.repeat(1500)}\n\n${'b'.repeat(1500)}\n\n${'c'.repeat(1500)}`;
    const before = fake.sent.length;
    const posts = () => fake.restLog.filter((l) => l === `POST /channels/${to.conversation}/messages`).length;
    // Part one goes through, part two meets a 500.
    fake.failNext('messages', 1, { status: 500 }, { after: 1 });
    const error = await sendError(run.adapter.send(to, text));
    expect(error.permanent).toBe(false);
    expect(fake.sent.slice(before).map((m) => m.content[0])).toEqual(['a']);
    // The outbox sends the whole reply again: part one is posted again but not created again.
    await run.adapter.send(to, text);
    expect(posts()).toBe(5);
    expect(fake.sent.slice(before).map((m) => m.content[0])).toEqual(['a', 'b', 'c']);
    expect(run.adapter.health().consecutiveSendFailures).toBe(0);
  });

  it('marks an unreachable Discord retryable', async () => {
    run = await startAdapter(fake);
    await fake.down();
    try {
      const error = await sendError(run.adapter.send(address(), 'hello'));
      expect(error.permanent).toBe(false);
      expect(error.retryAfterMs).toBeUndefined();
    } finally {
      await fake.up();
    }
  });

  it('sends typing, and never throws for it', async () => {
    run = await startAdapter(fake);
    const to = address();
    await run.adapter.typing(to);
    expect(fake.typing).toContain(to.conversation);
    await expect(
      run.adapter.typing({ channel: 'discord', conversation: '999999999999999998' }),
    ).resolves.toBeUndefined();
  });
});
