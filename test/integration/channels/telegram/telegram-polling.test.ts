import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelEvent, ChannelSink } from '../../../../src/channels/channel-adapter.js';
import type { TelegramAdapter } from '../../../../src/channels/telegram/telegram-adapter.js';
import { type FakeTelegram, startFakeTelegram } from '../../../fakes/fake-telegram.js';
import { createAdapter, RecordingSink, waitUntil } from './telegram-harness.js';

/** A sink whose `receive` stays pending until the test opens the gate. */
class GatedSink implements ChannelSink {
  readonly started: ChannelEvent[] = [];
  private open: () => void = () => {};
  private readonly gate = new Promise<void>((resolve) => {
    this.open = resolve;
  });

  async receive(event: ChannelEvent): Promise<void> {
    this.started.push(event);
    await this.gate;
  }

  release(): void {
    this.open();
  }
}

describe('Telegram long polling', () => {
  let fake: FakeTelegram;
  const adapters: TelegramAdapter[] = [];

  function adapter(overrides: Parameters<typeof createAdapter>[1] = {}): TelegramAdapter {
    const created = createAdapter(fake, overrides);
    adapters.push(created);
    return created;
  }

  afterEach(async () => {
    await Promise.all(adapters.splice(0).map((a) => a.stop()));
    await fake.close();
  });

  it('does not acknowledge an update the sink refused, and hands it over again, in order', async () => {
    fake = await startFakeTelegram();
    const a = fake.pushText(31, 31, 'A');
    const b = fake.pushText(31, 31, 'B');
    const acknowledgedAtAttempt: number[] = [];
    const sink = new RecordingSink(() => acknowledgedAtAttempt.push(fake.acknowledgedUpTo));
    sink.failNext(1);
    await adapter().start(sink, []);

    await waitUntil(() => sink.attempts.length >= 2, 'the second attempt');
    // A came back because the offset never went past it.
    expect(acknowledgedAtAttempt[1]).toBeLessThan(a.update_id);
    await waitUntil(() => fake.acknowledgedUpTo >= b.update_id, 'both acknowledged');
    expect(sink.attempts.map((e) => e.text)).toEqual(['A', 'A', 'B']);
    expect(sink.events.map((e) => e.text)).toEqual(['A', 'B']);
    expect(fake.deliveries.get(a.update_id)).toBe(2);
  });

  it('leaves a refused update with Telegram when stopped, for the next start', async () => {
    fake = await startFakeTelegram();
    const down = new RecordingSink();
    down.failNext(1_000);
    const first = adapter();
    await first.start(down, []);
    const update = fake.pushText(32, 32, 'keep me');
    await waitUntil(() => down.attempts.length >= 1, 'the refused attempt');
    await first.stop();
    expect(fake.acknowledgedUpTo).toBeLessThan(update.update_id);
    expect(fake.pending.map((u) => u.update_id)).toContain(update.update_id);

    const sink = new RecordingSink();
    await adapter().start(sink, []);
    await waitUntil(() => sink.events.length === 1, 'the redelivery');
    expect(sink.events[0]?.text).toBe('keep me');
  });

  it('does not let stop() acknowledge an update whose receive is still running', async () => {
    fake = await startFakeTelegram();
    const sink = new GatedSink();
    const first = adapter();
    await first.start(sink, []);
    const update = fake.pushText(33, 33, 'slow');
    await waitUntil(() => sink.started.length === 1, 'the receive');
    const stopped = first.stop();
    await waitUntil(
      () => fake.calls.some((c) => c.method === 'getUpdates' && c.params.limit === 1),
      'the final getUpdates',
    );
    expect(fake.acknowledgedUpTo).toBeLessThan(update.update_id);
    sink.release();
    await stopped;
  });

  it('starts while the server is down, reports it, and connects once it is up', async () => {
    fake = await startFakeTelegram();
    await fake.down();
    const sink = new RecordingSink();
    const telegram = adapter();
    const started = Date.now();
    await telegram.start(sink, []);
    expect(Date.now() - started).toBeLessThan(500);
    await waitUntil(() => telegram.health().lastError !== undefined, 'a reported error');
    expect(telegram.health().connected).toBe(false);
    expect(telegram.health().lastError).toMatch(/ECONNREFUSED/);
    expect(telegram.health().lastError).not.toContain(fake.token);

    await fake.up();
    await waitUntil(() => telegram.health().connected, 'the connection');
    expect(telegram.health().lastError).toBeUndefined();
    fake.pushText(34, 34, 'hello after the outage');
    await waitUntil(() => sink.events.length === 1, 'the message');
    expect(sink.events[0]?.text).toBe('hello after the outage');
  });

  it('resumes polling after the server goes away mid-run, without redelivering', async () => {
    fake = await startFakeTelegram();
    const sink = new RecordingSink();
    const telegram = adapter();
    await telegram.start(sink, []);
    fake.pushText(35, 35, 'before');
    await waitUntil(() => sink.events.length === 1, 'the first message');
    await waitUntil(() => fake.pending.length === 0, 'its acknowledgement');

    await fake.down();
    await waitUntil(() => !telegram.health().connected, 'the disconnect');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await fake.up();
    fake.pushText(35, 35, 'after');
    await waitUntil(() => sink.events.length === 2, 'the second message');
    expect(sink.events.map((e) => e.text)).toEqual(['before', 'after']);
    expect(telegram.health().connected).toBe(true);
  });

  it('keeps retrying with a wrong token (401) without crashing, and says so', async () => {
    fake = await startFakeTelegram();
    const telegram = adapter({ botToken: '999999:WrongTokenWrongTokenWrongToken' });
    await telegram.start(new RecordingSink(), []);
    await waitUntil(() => telegram.health().lastError !== undefined, 'a reported error');
    expect(telegram.health()).toMatchObject({ connected: false });
    expect(telegram.health().lastError).toMatch(/401/);
    expect(telegram.health().lastError).toMatch(/Unauthorized/);
  });

  it('takes over from a webhook by deleting it, as polling requires', async () => {
    fake = await startFakeTelegram();
    await fetch(`${fake.url}/bot${fake.token}/setWebhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'url=https%3A%2F%2Fexample.org%2Fhook',
    });
    expect(fake.webhook?.url).toBe('https://example.org/hook');
    const sink = new RecordingSink();
    await adapter().start(sink, []);
    fake.pushText(36, 36, 'via polling');
    await waitUntil(() => sink.events.length === 1, 'the message');
    expect(fake.webhook).toBeUndefined();
  });
});
