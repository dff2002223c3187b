import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChannelSendError, type ReplyAddress } from '../../../../src/channels/channel-adapter.js';
import type { TelegramAdapter } from '../../../../src/channels/telegram/telegram-adapter.js';
import { type FakeTelegram, startFakeTelegram } from '../../../fakes/fake-telegram.js';
import { createAdapter } from './telegram-harness.js';

const CHAT = 501;

/** The reverse of the adapter's rendering: HTML back to the Markdown-ish source. */
function unrender(html: string): string {
  return html
    .replace(
      /<pre><code class="language-([^"]+)">([\s\S]*?)<\/code><\/pre>/g,
      (_, lang, body) => `\`\`\`${lang}\n${body}\n\`\`\``,
    )
    .replace(/<pre>([\s\S]*?)<\/pre>/g, (_, body) => `\`\`\`\n${body}\n\`\`\``)
    .replace(/<code>([^<]*)<\/code>/g, (_, body) => `\`${body}\``)
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Tags balanced and properly nested; no bare < or >, and every & starts an entity. */
function assertValidHtml(html: string): void {
  const stack: string[] = [];
  for (const m of html.matchAll(/<(\/?)([a-z]+)[^>]*>/g)) {
    if (m[1] === '') stack.push(m[2] as string);
    else expect(stack.pop(), `closing </${m[2]}> in part`).toBe(m[2]);
  }
  expect(stack).toEqual([]);
  const outside = html.replace(/<\/?[a-z]+[^>]*>/g, '');
  expect(outside).not.toMatch(/[<>]/);
  expect(outside.replace(/&(lt|gt|amp);/g, '')).not.toContain('&');
}

/** Content without fence lines (the split adds some) and with whitespace runs as one space. */
const comparable = (s: string) =>
  s
    .split('\n')
    .filter((line) => !/^\s*```/.test(line))
    .join('\n')
    .replace(/\s+/g, ' ')
    .trim();

function longReply(): string {
  const prose = 'Tom & Jerry <3 "quotes" > less & more; use `a < b && c > d` inline. ';
  const code = 'if (a < b && b > c) { return "<div class=\\"x\\">&amp;</div>"; } // 5 > 4 & 3 < 4\n';
  let text = '';
  while (text.length < 3_000) text += prose;
  text += '\n\n```ts\n';
  while (text.length < 8_000) text += code;
  text += '```\n\n';
  while (text.length < 10_000) text += prose;
  return text;
}

describe('Telegram send', () => {
  let fake: FakeTelegram;
  let adapter: TelegramAdapter;
  let address: ReplyAddress;

  beforeEach(async () => {
    fake = await startFakeTelegram();
    adapter = createAdapter(fake);
    const question = fake.textUpdate(CHAT, CHAT, 'a question');
    address = {
      channel: 'telegram',
      conversation: String(CHAT),
      thread: String(question.message?.message_id),
    };
  });

  afterEach(async () => {
    await adapter.stop();
    await fake.close();
  });

  it('splits a 10,000-character reply into valid HTML parts of at most 4,096, losing nothing', async () => {
    const text = longReply();
    expect(text.length).toBeGreaterThanOrEqual(10_000);
    await adapter.send(address, text);

    const parts = fake.sent.map((m) => m.source);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(4096);
      assertValidHtml(part);
    }
    // The code block is cut in two: each piece is a block of its own, with its language.
    expect(parts.filter((p) => p.includes('<pre><code class="language-ts">')).length).toBeGreaterThanOrEqual(
      2,
    );
    expect(parts.join('')).toContain('<code>a &lt; b &amp;&amp; c &gt; d</code>');
    expect(comparable(parts.map(unrender).join('\n'))).toBe(comparable(text));
    // Only the first part answers the question.
    expect(fake.sent.map((m) => m.replyTo)).toEqual([
      Number(address.thread),
      ...parts.slice(1).map(() => undefined),
    ]);
    expect(adapter.health()).toMatchObject({ consecutiveSendFailures: 0 });
  });

  it('never cuts an entity or a surrogate pair, even in text without spaces', async () => {
    const text = '&<😀>'.repeat(2_000);
    await adapter.send(address, text);
    expect(fake.sent.length).toBeGreaterThanOrEqual(5);
    for (const { source } of fake.sent) {
      expect(source.length).toBeLessThanOrEqual(4096);
      assertValidHtml(source);
    }
    // The fake decodes each part as Telegram would: nothing broken, nothing lost.
    expect(fake.sent.map((m) => m.text).join('')).toBe(text);
  });

  it('turns 429 into a retryable ChannelSendError with retryAfterMs from retry_after', async () => {
    fake.rateLimitNext(1, 7);
    const error = await adapter.send(address, 'hello').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelSendError);
    expect(error).toMatchObject({ retryAfterMs: 7_000, permanent: false });
    expect(adapter.health()).toMatchObject({ consecutiveSendFailures: 1 });
    expect(fake.sent).toHaveLength(0);

    await adapter.send(address, 'hello');
    expect(fake.sent.map((m) => m.text)).toEqual(['hello']);
    expect(adapter.health()).toMatchObject({ consecutiveSendFailures: 0 });
  });

  it('resumes a split reply where a 429 stopped it, without posting parts twice', async () => {
    const text = longReply();
    fake.rateLimitNext(1, 1, { after: 1 });
    await expect(adapter.send(address, text)).rejects.toMatchObject({ retryAfterMs: 1_000 });
    expect(fake.sent).toHaveLength(1);
    await adapter.send(address, text);
    const sources = fake.sent.map((m) => m.source);
    expect(new Set(sources).size).toBe(sources.length);
    expect(comparable(sources.map(unrender).join('\n'))).toBe(comparable(text));
    expect(fake.sent.filter((m) => m.replyTo !== undefined)).toHaveLength(1);
  });

  it('marks chat-not-found (400) and blocked (403) as permanent', async () => {
    await expect(
      adapter.send({ channel: 'telegram', conversation: '777000111' }, 'anyone there?'),
    ).rejects.toMatchObject({ permanent: true, message: expect.stringContaining('chat not found') });
    fake.blockChat(CHAT);
    await expect(adapter.send(address, 'hello')).rejects.toMatchObject({
      permanent: true,
      message: expect.stringContaining('blocked'),
    });
    expect(adapter.health().consecutiveSendFailures).toBe(2);
  });

  it('marks network failures retryable, and keeps the token out of errors and health', async () => {
    await fake.down();
    const error = await adapter.send(address, 'hello').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelSendError);
    expect(error).toMatchObject({ permanent: false, retryAfterMs: undefined });
    expect((error as Error).message).not.toContain(fake.token);
    expect(adapter.health().lastError).toMatch(/ECONNREFUSED|sendMessage/);
    expect(adapter.health().lastError).not.toContain(fake.token);
  });

  it('follows a group that became a supergroup', async () => {
    fake.addChat({ id: -1009990001, type: 'supergroup', title: 'upgraded' });
    fake.failNext('sendMessage', 1, {
      error_code: 400,
      description: 'Bad Request: group chat was upgraded to a supergroup chat',
      parameters: { migrate_to_chat_id: -1009990001 },
    });
    await adapter.send(address, 'still here');
    expect(fake.sent.map((m) => [m.chatId, m.text])).toEqual([[-1009990001, 'still here']]);
  });

  it('sends to a fake that refuses what Telegram refuses, so the checks above mean something', async () => {
    const call = async (text: string) => {
      const response = await fetch(`${fake.url}/bot${fake.token}/sendMessage`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ chat_id: CHAT, text, parse_mode: 'HTML' }),
      });
      return response.json();
    };
    const unparsable = {
      ok: false,
      error_code: 400,
      description: expect.stringContaining("can't parse entities"),
    };
    expect(await call('a < b')).toMatchObject(unparsable);
    expect(await call('<b>bold')).toMatchObject(unparsable);
    expect(await call('<b>x</i>')).toMatchObject(unparsable);
    expect(await call('<div>x</div>')).toMatchObject(unparsable);
    expect(await call('x'.repeat(4097))).toMatchObject({ description: 'Bad Request: message is too long' });
    // Telegram counts the text after parsing; the adapter's stricter count is on the source.
    expect(await call(`<b>${'x'.repeat(4096)}</b>`)).toMatchObject({ ok: true });
  });

  it('refuses an empty reply as permanent', async () => {
    await expect(adapter.send(address, ' \n ')).rejects.toMatchObject({ permanent: true });
    expect(fake.sent).toHaveLength(0);
  });
});
