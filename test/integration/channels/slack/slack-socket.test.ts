import { afterEach, describe, expect, it } from 'vitest';
import type { SlackAdapter } from '../../../../src/channels/slack/slack-adapter.js';
import {
  appMentionEvent,
  eventCallback,
  type FakeSlack,
  messageEvent,
  slashCommandFields,
  startFakeSlack,
} from '../../../fakes/fake-slack.js';
import { eventually, firstAddress, newAdapter, type RecordingSink, recordingSink } from './slack-harness.js';

describe('Slack adapter, Socket Mode', () => {
  let fake: FakeSlack;
  let adapter: SlackAdapter;
  let sink: RecordingSink;

  async function startSocket(options: { pingIntervalMs?: number } = {}): Promise<void> {
    fake = await startFakeSlack(options);
    adapter = newAdapter(fake, { mode: 'socket', appToken: fake.appToken, signingSecret: undefined });
    sink = recordingSink();
    await adapter.start(sink, []);
  }

  afterEach(async () => {
    await adapter?.stop();
    await fake?.close();
  });

  it('connects with the app token, takes an event, acks its envelope only after the agent accepted it, and replies', async () => {
    await startSocket();
    expect(adapter.webhook).toBeUndefined();
    expect(adapter.health().connected).toBe(true);
    expect(fake.sockets).toBe(1);
    expect(fake.calls.find((c) => c.method === 'apps.connections.open')?.token).toBe(fake.appToken);

    let release: () => void = () => {};
    const accepted = new Promise<void>((resolve) => {
      release = resolve;
    });
    const receive = sink.receive;
    sink.receive = async (event) => {
      await accepted;
      await receive(event);
    };
    const mention = appMentionEvent({
      user: 'UPERSON01',
      text: `<@${fake.botUserId}> ping`,
      ts: '1700000002.000300',
    });
    const envelopeId = fake.pushEnvelope(
      'events_api',
      eventCallback({ event: mention, eventId: 'Ev0SOCKET1' }),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fake.acks).toEqual([]);
    release();

    const ack = await fake.waitForAck(envelopeId);
    expect(ack.envelope_id).toBe(envelopeId);
    expect(sink.events).toEqual([
      {
        eventId: 'Ev0SOCKET1',
        userId: 'UPERSON01',
        text: 'ping',
        address: { channel: 'slack', conversation: 'C0GENERAL', thread: '1700000002.000300' },
      },
    ]);
    await adapter.send(firstAddress(sink), 'pong');
    expect(fake.posted).toEqual([expect.objectContaining({ text: 'pong', thread_ts: '1700000002.000300' })]);
  });

  it('leaves an envelope unacked when the agent does not accept it, so Slack redelivers it', async () => {
    await startSocket();
    sink.failWith = new Error('redis down');
    const body = eventCallback({ event: messageEvent({ user: 'UPERSON01', text: 'later' }) });
    const first = fake.pushEnvelope('events_api', body);
    await expect(fake.waitForAck(first, 300)).rejects.toThrow(/waited/);

    sink.failWith = undefined;
    const redelivered = fake.pushEnvelope('events_api', body, { retryAttempt: 1 });
    await fake.waitForAck(redelivered);
    expect(sink.events.map((e) => e.text)).toEqual(['later']);
  });

  it('takes a slash command over the socket and acks it', async () => {
    await startSocket();
    const fields = slashCommandFields({ command: '/status', text: 'now', channel: 'C0OPS' });
    const envelopeId = fake.pushEnvelope('slash_commands', fields);
    await fake.waitForAck(envelopeId);
    expect(sink.events).toEqual([
      expect.objectContaining({ text: '/status now', address: { channel: 'slack', conversation: 'C0OPS' } }),
    ]);
  });

  it('ignores its own message but still acks it', async () => {
    await startSocket();
    const own = eventCallback({ event: messageEvent({ user: fake.botUserId, text: 'me' }) });
    await fake.waitForAck(fake.pushEnvelope('events_api', own));
    expect(sink.events).toEqual([]);
  });

  it('reconnects by itself after Slack drops the socket, and stays down after stop()', async () => {
    await startSocket();
    await fake.down();
    await eventually(() => !adapter.health().connected, 5_000, 'the drop to show');
    await fake.up();
    await eventually(() => adapter.health().connected && fake.sockets === 1, 5_000, 'a reconnect');
    const envelopeId = fake.pushEnvelope(
      'events_api',
      eventCallback({ event: messageEvent({ user: 'UP1', text: 'back' }) }),
    );
    await fake.waitForAck(envelopeId);
    expect(sink.events.map((e) => e.text)).toEqual(['back']);

    await adapter.stop();
    await adapter.stop();
    await eventually(() => fake.sockets === 0, 3_000, 'the socket to close');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.sockets).toBe(0);
    expect(adapter.health().connected).toBe(false);
  });
});
