import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelEvent, ChannelSink, ReplyAddress } from '../../../../src/channels/channel-adapter.js';
import { CHANNELS_DEFAULTS } from '../../../../src/channels/channels-config.js';
import type { TelegramAdapter } from '../../../../src/channels/telegram/telegram-adapter.js';
import { type FakeTelegram, startFakeTelegram } from '../../../fakes/fake-telegram.js';
import {
  COMMANDS,
  capturingLogger,
  channelsWith,
  createAdapter,
  type LogLine,
  RecordingSink,
  waitUntil,
} from './telegram-harness.js';

/** The same bot (id 123456789) as the fake's default token, after a rotation at @BotFather. */
const NEW_TOKEN = '123456789:AAFreshTokenAfterRotation_klmnopqrs';
const OLD_SECRET = 'webhook_secret-before-rotation';
const NEW_SECRET = 'webhook_secret-after-rotation';
const TOOK = 'took rotated Telegram secrets';

/** Accepts every event at once, except the one with `heldText`, which waits for `release()`. */
class HoldingSink implements ChannelSink {
  readonly attempts: string[] = [];
  readonly events: ChannelEvent[] = [];
  release: () => void = () => {};
  private readonly gate = new Promise<void>((resolve) => {
    this.release = resolve;
  });

  constructor(private readonly heldText: string) {}

  async receive(event: ChannelEvent): Promise<void> {
    this.attempts.push(event.text);
    if (event.text === this.heldText) await this.gate;
    this.events.push(event);
  }
}

function expectNoSecretIn(logs: readonly LogLine[], adapter: TelegramAdapter, secrets: readonly string[]) {
  const text = JSON.stringify({ logs, health: adapter.health() });
  for (const secret of secrets) expect(text).not.toContain(secret);
}

const took = (logs: readonly LogLine[]) => logs.filter((l) => l.msg === TOOK);

describe('Telegram secret rotation', () => {
  let fake: FakeTelegram;
  const adapters: TelegramAdapter[] = [];
  let app: FastifyInstance | undefined;

  function track(adapter: TelegramAdapter): TelegramAdapter {
    adapters.push(adapter);
    return adapter;
  }

  /** A webhook-mode adapter on its own fastify server (secret OLD_SECRET, grace 60 s), started. */
  async function startWebhookAdapter(now: () => number) {
    fake = await startFakeTelegram();
    const { logger, logs } = capturingLogger();
    const adapter = track(
      createAdapter(
        fake,
        { mode: 'webhook', webhookSecret: OLD_SECRET, webhookPath: '/hooks/telegram' },
        { logger, now, secretGraceMs: 60_000 },
      ),
    );
    app = Fastify();
    await app.register(adapter.webhook as NonNullable<TelegramAdapter['webhook']>);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks/telegram`;
    const sink = new RecordingSink();
    await adapter.start(sink, []);
    await waitUntil(() => adapter.health().connected, 'getMe');
    return { adapter, url, logs, sink };
  }

  afterEach(async () => {
    await Promise.all(adapters.splice(0).map((a) => a.stop()));
    await app?.close();
    app = undefined;
    await fake.close();
  });

  it('moves a polling adapter to the new token: the poll with the old one is cut short, messages after are received and answered', async () => {
    fake = await startFakeTelegram();
    const oldToken = fake.token;
    const { logger, logs } = capturingLogger();
    // A poll that is not cut short would still be waiting, with the old token, when it is revoked.
    const adapter = track(createAdapter(fake, { pollTimeoutSeconds: 30 }, { logger }));
    const sink = new RecordingSink();
    await adapter.start(sink, COMMANDS);
    fake.pushText(71, 71, 'before');
    await waitUntil(() => sink.events.length === 1, 'the first message');
    await waitUntil(() => fake.pending.length === 0, 'its acknowledgement');
    const startsBefore = fake.calls.filter((c) => c.method === 'deleteWebhook').length;

    fake.setTokens([oldToken, NEW_TOKEN]);
    await adapter.renewSecrets(channelsWith(fake, { botToken: NEW_TOKEN, pollTimeoutSeconds: 30 }));
    fake.setTokens([NEW_TOKEN]);

    const after = ['after 1', 'after 2', 'after 3'].map((text) => fake.pushText(71, 71, text));
    await waitUntil(() => sink.events.length === 4, 'the messages sent after the rotation');
    for (const event of sink.events.slice(1)) await adapter.send(event.address, `echo: ${event.text}`);
    await waitUntil(() => fake.pending.length === 0, 'their acknowledgement');

    expect(sink.events.map((e) => e.text)).toEqual(['before', 'after 1', 'after 2', 'after 3']);
    expect(sink.attempts).toHaveLength(4);
    for (const update of after) expect(fake.deliveries.get(update.update_id)).toBe(1);
    expect(fake.sent.map((m) => m.text)).toEqual(['echo: after 1', 'echo: after 2', 'echo: after 3']);
    expect(fake.refused).toEqual([]);
    // The poller was restarted (setup runs deleteWebhook), on the new token.
    const restarts = fake.calls.filter((c) => c.method === 'deleteWebhook').slice(startsBefore);
    expect(restarts.map((c) => c.token)).toEqual([NEW_TOKEN]);
    expect(adapter.health()).toMatchObject({ connected: true });
    expect(took(logs)).toEqual([expect.objectContaining({ level: 30, secrets: ['botToken'] })]);
    expectNoSecretIn(logs, adapter, [oldToken, NEW_TOKEN]);
  });

  it('loses and repeats nothing when the token switches while an update is being handled', async () => {
    fake = await startFakeTelegram();
    const oldToken = fake.token;
    const adapter = track(createAdapter(fake));
    const sink = new HoldingSink('slow');
    try {
      await adapter.start(sink, []);
      fake.pushText(72, 72, 'one');
      await waitUntil(() => sink.events.length === 1, 'the first message');
      const slow = fake.pushText(72, 72, 'slow');
      await waitUntil(() => sink.attempts.includes('slow'), 'the receive in progress');
      fake.pushText(72, 72, 'during 1');

      fake.setTokens([oldToken, NEW_TOKEN]);
      await adapter.renewSecrets(channelsWith(fake, { botToken: NEW_TOKEN }));
      fake.setTokens([NEW_TOKEN]);
      // The old poller's last acknowledgement (made with the new token) left the update in hand.
      expect(fake.acknowledgedUpTo).toBeLessThan(slow.update_id);
      fake.pushText(72, 72, 'during 2');
      sink.release();
      const last = fake.pushText(72, 72, 'after');
      await waitUntil(() => fake.acknowledgedUpTo >= last.update_id, 'everything acknowledged');
      const polls = fake.getUpdatesCalls;
      await waitUntil(() => fake.getUpdatesCalls > polls + 1, 'two more polls');
    } finally {
      sink.release();
    }

    const texts = ['one', 'slow', 'during 1', 'during 2', 'after'];
    expect(sink.events.map((e) => e.text)).toEqual(texts);
    expect(sink.attempts).toEqual(texts);
    expect(fake.pending).toEqual([]);
    expect(fake.refused).toEqual([]);
    for (const event of sink.events.slice(1)) await adapter.send(event.address, `echo: ${event.text}`);
    const sends = fake.calls.filter((c) => c.method === 'sendMessage');
    expect(sends.map((c) => [c.params.text, c.token])).toEqual(
      texts.slice(1).map((text) => [`echo: ${text}`, NEW_TOKEN]),
    );
  });

  it('connects at once on the new token when the old one was revoked first, instead of waiting out its back-off', async () => {
    fake = await startFakeTelegram();
    const oldToken = fake.token;
    fake.setTokens([NEW_TOKEN]);
    const { logger, logs } = capturingLogger();
    // Without the rotation cutting it short, the wait after the 401 outlasts every waitUntil here.
    const adapter = track(
      createAdapter(fake, { botToken: oldToken }, { logger, backoff: { initialMs: 60_000, maxMs: 60_000 } }),
    );
    const sink = new RecordingSink();
    await adapter.start(sink, COMMANDS);
    await waitUntil(() => adapter.health().lastError !== undefined, 'the 401');
    expect(adapter.health().lastError).toMatch(/401 Unauthorized/);
    expect(fake.refused.map((r) => r.token)).toContain(oldToken);

    await adapter.renewSecrets(channelsWith(fake, { botToken: NEW_TOKEN }));
    await waitUntil(() => adapter.health().connected, 'the connection with the new token');
    await waitUntil(() => fake.commands !== undefined, 'the command menu');
    fake.pushText(73, 73, 'hello');
    await waitUntil(() => sink.events.length === 1, 'the message');
    await adapter.typing(sink.events[0]?.address as ReplyAddress);

    expect(fake.commands?.map((c) => c.command)).toEqual(['help', 'reset']);
    expect(fake.actions).toEqual([{ chatId: 73, action: 'typing' }]);
    // Calls are recorded only with a valid token, which the old one no longer was.
    const methods = new Set(fake.calls.map((c) => c.method));
    for (const method of ['getMe', 'deleteWebhook', 'getUpdates', 'setMyCommands', 'sendChatAction'])
      expect(methods).toContain(method);
    expect(new Set(fake.refused.map((r) => r.token))).toEqual(new Set([oldToken]));
    expectNoSecretIn(logs, adapter, [oldToken, NEW_TOKEN]);
  });

  it('switches a never-started adapter (a sender) to the new token for sends, without connecting', async () => {
    fake = await startFakeTelegram();
    const oldToken = fake.token;
    const { logger, logs } = capturingLogger();
    const sender = track(createAdapter(fake, {}, { logger }));
    fake.addChat({ id: 74, type: 'private', first_name: 'Ann' });
    const address: ReplyAddress = { channel: 'telegram', conversation: '74' };
    await sender.send(address, 'with the old token');

    fake.setTokens([NEW_TOKEN]);
    await sender.renewSecrets(channelsWith(fake, { botToken: NEW_TOKEN }));
    await sender.send(address, 'with the new token');
    await sender.typing(address);

    expect(fake.calls.filter((c) => c.method === 'sendMessage').map((c) => [c.params.text, c.token])).toEqual(
      [
        ['with the old token', oldToken],
        ['with the new token', NEW_TOKEN],
      ],
    );
    expect(fake.actions).toEqual([{ chatId: 74, action: 'typing' }]);
    expect(fake.calls.map((c) => c.method)).not.toContain('getUpdates');
    expect(fake.calls.map((c) => c.method)).not.toContain('getMe');
    expect(fake.refused).toEqual([]);
    expect(took(logs)).toEqual([expect.objectContaining({ secrets: ['botToken'] })]);

    // An error text that carries a token (as a network error's URL can) shows neither.
    fake.failNext('sendMessage', 1, {
      error_code: 400,
      description: `Bad Request: ${oldToken} ${NEW_TOKEN}`,
    });
    const failure = await sender.send(address, 'refused').catch((error: unknown) => error as Error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure?.message).toContain('[token] [token]');
    expectNoSecretIn(logs, sender, [oldToken, NEW_TOKEN]);
    expect(failure?.message).not.toContain(oldToken);
    expect(failure?.message).not.toContain(NEW_TOKEN);
  });

  it("refuses another bot's token and keeps the current one", async () => {
    fake = await startFakeTelegram();
    const sender = track(createAdapter(fake));
    fake.addChat({ id: 75, type: 'private', first_name: 'Bo' });
    await expect(
      sender.renewSecrets(channelsWith(fake, { botToken: '987654321:AAAnotherBotsTokenEntirely_xyz' })),
    ).rejects.toThrow(RangeError);
    await sender.send({ channel: 'telegram', conversation: '75' }, 'still the same bot');
    expect(fake.sent.map((m) => m.text)).toEqual(['still the same bot']);
    // A later rotation is not blocked by the refused one.
    fake.setTokens([NEW_TOKEN]);
    await sender.renewSecrets(channelsWith(fake, { botToken: NEW_TOKEN }));
    await sender.send({ channel: 'telegram', conversation: '75' }, 'rotated');
    expect(fake.sent.map((m) => m.text)).toEqual(['still the same bot', 'rotated']);
  });

  it('takes a rotated webhook secret: the new one and, within the grace period only, the old one', async () => {
    let clock = 1_000_000;
    const { adapter, url, logs, sink } = await startWebhookAdapter(() => clock);
    const deliver = (text: string, secret?: string) =>
      fake.deliverWebhook(url, fake.textUpdate(76, 76, text), secret).then((d) => d.status);

    expect(await deliver('old before', OLD_SECRET)).toBe(200);
    expect(await deliver('new too early', NEW_SECRET)).toBe(401);
    fake.setTokens([fake.token, NEW_TOKEN]);
    await adapter.renewSecrets(
      channelsWith(fake, { mode: 'webhook', webhookSecret: NEW_SECRET, botToken: NEW_TOKEN }),
    );
    fake.setTokens([NEW_TOKEN]);
    expect(await deliver('new', NEW_SECRET)).toBe(200);
    clock += 59_999;
    expect(await deliver('old within grace', OLD_SECRET)).toBe(200);
    expect(await deliver('wrong', `${NEW_SECRET}x`)).toBe(401);
    expect(await deliver('missing')).toBe(401);
    clock += 1;
    expect(await deliver('old after grace', OLD_SECRET)).toBe(401);
    expect(await deliver('new after grace', NEW_SECRET)).toBe(200);

    expect(sink.events.map((e) => e.text)).toEqual([
      'old before',
      'new',
      'old within grace',
      'new after grace',
    ]);
    await adapter.send(sink.events[1]?.address as ReplyAddress, 'answer');
    expect(fake.calls.filter((c) => c.method === 'sendMessage').map((c) => c.token)).toEqual([NEW_TOKEN]);
    expect(took(logs)).toEqual([
      expect.objectContaining({ level: 30, secrets: ['botToken', 'webhookSecret'] }),
    ]);
    expectNoSecretIn(logs, adapter, [OLD_SECRET, NEW_SECRET, NEW_TOKEN]);
  });

  it('does nothing when no secret changed, whatever else did', async () => {
    fake = await startFakeTelegram();
    const { logger, logs } = capturingLogger();
    const adapter = track(createAdapter(fake, {}, { logger }));
    const sink = new RecordingSink();
    await adapter.start(sink, []);
    fake.pushText(77, 77, 'one');
    await waitUntil(() => sink.events.length === 1, 'the first message');

    await adapter.renewSecrets(channelsWith(fake));
    // Settings that need a restart are not taken: with this apiRoot, nothing would arrive.
    await adapter.renewSecrets(channelsWith(fake, { apiRoot: 'http://127.0.0.1:9', pollTimeoutSeconds: 5 }));
    await adapter.renewSecrets({ ...CHANNELS_DEFAULTS });
    fake.pushText(77, 77, 'two');
    await waitUntil(() => sink.events.length === 2, 'the second message');

    expect(sink.events.map((e) => e.text)).toEqual(['one', 'two']);
    // One start of the poller (its setup calls deleteWebhook), never restarted.
    expect(fake.calls.filter((c) => c.method === 'deleteWebhook')).toHaveLength(1);
    expect(took(logs)).toEqual([]);
  });

  it("does not extend the old webhook secret's grace when the same secret comes again", async () => {
    let clock = 5_000_000;
    const { adapter, url, logs } = await startWebhookAdapter(() => clock);
    const status = async (secret: string) =>
      (await fake.deliverWebhook(url, fake.textUpdate(78, 78, 'x'), secret)).status;

    const rotated = channelsWith(fake, { mode: 'webhook', webhookSecret: NEW_SECRET });
    await adapter.renewSecrets(rotated);
    clock += 59_000;
    await adapter.renewSecrets(rotated);
    expect(await status(OLD_SECRET)).toBe(200);
    clock += 1_000;
    expect(await status(OLD_SECRET)).toBe(401);
    expect(await status(NEW_SECRET)).toBe(200);
    expect(took(logs)).toEqual([expect.objectContaining({ secrets: ['webhookSecret'] })]);
  });
});
