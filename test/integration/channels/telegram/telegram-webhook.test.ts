import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { TelegramAdapter } from '../../../../src/channels/telegram/telegram-adapter.js';
import { type FakeTelegram, startFakeTelegram } from '../../../fakes/fake-telegram.js';
import { COMMANDS, createAdapter, RecordingSink, waitUntil } from './telegram-harness.js';

const SECRET = 'webhook_secret-0123456789';

describe('Telegram webhook mode', () => {
  let fake: FakeTelegram;
  let adapter: TelegramAdapter;
  let app: FastifyInstance;
  let url: string;
  let sink: RecordingSink;

  /** The adapter's route on a real server, as the HTTP channel mounts it. */
  async function setUp(options: { serverDown?: boolean } = {}): Promise<void> {
    fake = await startFakeTelegram();
    if (options.serverDown) await fake.down();
    adapter = createAdapter(fake, { mode: 'webhook', webhookSecret: SECRET, webhookPath: '/hooks/telegram' });
    app = Fastify();
    await app.register(adapter.webhook as NonNullable<TelegramAdapter['webhook']>);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks/telegram`;
    sink = new RecordingSink();
    await adapter.start(sink, COMMANDS);
  }

  afterEach(async () => {
    await adapter.stop();
    await app.close();
    await fake.close();
  });

  it('accepts an update with the right secret (200) and hands it to the sink', async () => {
    await setUp();
    await waitUntil(() => adapter.health().connected, 'getMe');
    const update = fake.textUpdate(61, 61, 'via webhook');
    const delivery = await fake.deliverWebhook(url, update, SECRET);
    expect(delivery).toEqual({ status: 200, body: '' });
    expect(sink.events).toEqual([
      {
        eventId: `61:${update.message?.message_id}`,
        userId: '61',
        text: 'via webhook',
        address: { channel: 'telegram', conversation: '61', thread: String(update.message?.message_id) },
      },
    ]);
    await waitUntil(() => fake.commands !== undefined, 'setMyCommands');
    // The operator owns the webhook registration; polling calls would break it.
    expect(new Set(fake.calls.map((c) => c.method))).toEqual(new Set(['getMe', 'setMyCommands']));
  });

  it('refuses a wrong or missing secret with 401 and hands nothing over', async () => {
    await setUp();
    await waitUntil(() => adapter.health().connected, 'getMe');
    const update = fake.textUpdate(62, 62, 'forged');
    expect((await fake.deliverWebhook(url, update, `${SECRET}x`)).status).toBe(401);
    expect((await fake.deliverWebhook(url, update, SECRET.slice(0, -1))).status).toBe(401);
    expect((await fake.deliverWebhook(url, update)).status).toBe(401);
    expect(sink.attempts).toEqual([]);
    expect(adapter.health().lastEventAt).toBeUndefined();
  });

  it('answers 500 when the sink refuses, so Telegram sends the update again', async () => {
    await setUp();
    await waitUntil(() => adapter.health().connected, 'getMe');
    const update = fake.textUpdate(63, 63, 'retry me');
    sink.failNext(1);
    expect((await fake.deliverWebhook(url, update, SECRET)).status).toBe(500);
    expect(sink.events).toEqual([]);
    expect((await fake.deliverWebhook(url, update, SECRET)).status).toBe(200);
    expect(sink.events.map((e) => e.text)).toEqual(['retry me']);
  });

  it('answers 503 until it knows who it is, then takes updates', async () => {
    await setUp({ serverDown: true });
    const update = fake.textUpdate(64, 64, 'early');
    expect((await fake.deliverWebhook(url, update, SECRET)).status).toBe(503);
    await waitUntil(() => adapter.health().lastError !== undefined, 'the reported outage');
    await fake.up();
    await waitUntil(() => adapter.health().connected, 'getMe');
    expect((await fake.deliverWebhook(url, update, SECRET)).status).toBe(200);
    expect(sink.events.map((e) => e.text)).toEqual(['early']);
  });

  it('applies the group rules to webhook updates too', async () => {
    await setUp();
    await waitUntil(() => adapter.health().connected, 'getMe');
    const plain = fake.textUpdate(-65, 65, 'chatter');
    const mention = fake.textUpdate(-65, 65, `@${fake.bot.username} ping`);
    expect((await fake.deliverWebhook(url, plain, SECRET)).status).toBe(200);
    expect((await fake.deliverWebhook(url, mention, SECRET)).status).toBe(200);
    expect(sink.events.map((e) => e.text)).toEqual(['ping']);
  });

  it('offers no webhook route in polling mode', async () => {
    fake = await startFakeTelegram();
    adapter = createAdapter(fake);
    app = Fastify();
    expect(adapter.webhook).toBeUndefined();
  });
});
