import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  appMentionEvent,
  eventCallback,
  messageEvent,
  postSlackEvent,
  postSlashCommand,
  slashCommandFields,
} from '../../../fakes/fake-slack.js';
import { firstAddress, type HttpHarness, SIGNING_SECRET, startHttpHarness } from './slack-harness.js';

describe('Slack adapter, HTTP mode: Events API and slash commands', () => {
  let h: HttpHarness;

  beforeAll(async () => {
    h = await startHttpHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(() => {
    h.sink.events.length = 0;
    h.sink.failWith = undefined;
    h.fake.posted.length = 0;
  });

  it('learns the bot user id with auth.test and reports connected', () => {
    expect(h.fake.calls.some((c) => c.method === 'auth.test' && c.token === h.fake.botToken)).toBe(true);
    expect(h.adapter.health().connected).toBe(true);
  });

  it('echoes the url_verification challenge of a signed request', async () => {
    const response = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, {
      token: 'deprecated',
      challenge: 'challenge-3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P',
      type: 'url_verification',
    });
    expect(response.status).toBe(200);
    expect(response.json).toEqual({
      challenge: 'challenge-3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P',
    });
  });

  it('takes an app_mention without the mention, addressed to its thread, and replies in that thread', async () => {
    const mention = appMentionEvent({
      user: 'UPERSON01',
      text: `<@${h.fake.botUserId}> what is 2 &lt; 3 &amp;&amp; 4 &gt; 1?`,
      channel: 'C0GENERAL',
      ts: '1700000000.000100',
      threadTs: '1700000000.000001',
    });
    const body = eventCallback({ event: mention, eventId: 'Ev0MENTION1' });
    const response = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body);
    expect(response.status).toBe(200);
    expect(h.sink.events).toEqual([
      {
        eventId: 'Ev0MENTION1',
        userId: 'UPERSON01',
        text: 'what is 2 < 3 && 4 > 1?',
        address: { channel: 'slack', conversation: 'C0GENERAL', thread: '1700000000.000001' },
      },
    ]);

    await h.adapter.send(firstAddress(h.sink), 'yes: 2 < 3');
    expect(h.fake.posted).toMatchObject([
      { channel: 'C0GENERAL', thread_ts: '1700000000.000001', text: 'yes: 2 &lt; 3' },
    ]);
    expect(h.adapter.health().lastSendAt).toBeTypeOf('number');
  });

  it('starts a thread under a top-level mention', async () => {
    const mention = appMentionEvent({
      user: 'UPERSON01',
      text: `<@${h.fake.botUserId}> hi`,
      ts: '1700000001.000200',
    });
    await postSlackEvent(h.eventsUrl, SIGNING_SECRET, eventCallback({ event: mention }));
    expect(h.sink.events[0]?.address).toEqual({
      channel: 'slack',
      conversation: 'C0GENERAL',
      thread: '1700000001.000200',
    });
  });

  it('takes a direct message and replies in the DM', async () => {
    const dm = messageEvent({ user: 'UPERSON02', text: 'hello bot', channel: 'D0DIRECT1' });
    const response = await postSlackEvent(
      h.eventsUrl,
      SIGNING_SECRET,
      eventCallback({ event: dm, eventId: 'Ev0DM0001' }),
    );
    expect(response.status).toBe(200);
    expect(h.sink.events).toEqual([
      {
        eventId: 'Ev0DM0001',
        userId: 'UPERSON02',
        text: 'hello bot',
        address: { channel: 'slack', conversation: 'D0DIRECT1' },
      },
    ]);
    await h.adapter.send(firstAddress(h.sink), 'hello person');
    expect(h.fake.posted).toEqual([expect.objectContaining({ channel: 'D0DIRECT1', text: 'hello person' })]);
    expect(h.fake.posted[0]).not.toHaveProperty('thread_ts');
  });

  it("ignores the bot's own messages, other bots, edits and channel chatter, but still acks them", async () => {
    const ignored = [
      messageEvent({ user: h.fake.botUserId, text: 'my own reply' }),
      messageEvent({ user: 'UOTHER001', botId: 'BOTHER001', text: 'another bot' }),
      messageEvent({ text: 'a bot message', subtype: 'bot_message', botId: 'BOTHER001' }),
      messageEvent({ user: 'UPERSON01', text: 'edited', subtype: 'message_changed' }),
      messageEvent({
        user: 'UPERSON01',
        text: 'just chatting',
        channel: 'C0GENERAL',
        channelType: 'channel',
      }),
      appMentionEvent({ user: 'UPERSON01', text: `<@${h.fake.botUserId}>` }),
      { type: 'reaction_added', user: 'UPERSON01', reaction: 'thumbsup' },
    ];
    for (const event of ignored) {
      const response = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, eventCallback({ event }));
      expect(response.status).toBe(200);
    }
    expect(h.sink.events).toEqual([]);
  });

  it('passes a Slack retry through with the same event id, for the agent to dedupe', async () => {
    const body = eventCallback({
      event: messageEvent({ user: 'UPERSON01', text: 'once' }),
      eventId: 'Ev0RETRY01',
    });
    await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body);
    await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body, { retryNum: 1 });
    expect(h.sink.events.map((e) => e.eventId)).toEqual(['Ev0RETRY01', 'Ev0RETRY01']);
  });

  it('answers 500 when the agent does not accept the event, so Slack retries it', async () => {
    h.sink.failWith = new Error('redis down');
    const body = eventCallback({ event: messageEvent({ user: 'UPERSON01', text: 'keep me' }) });
    const response = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body);
    expect(response.status).toBe(500);
    expect(response.json).toMatchObject({ error: { code: 'not_accepted' } });

    h.sink.failWith = undefined;
    const retry = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body, { retryNum: 1 });
    expect(retry.status).toBe(200);
    expect(h.sink.events.map((e) => e.text)).toEqual(['keep me']);
  });

  it('refuses a bad signature with 401 and hands nothing to the agent', async () => {
    const body = eventCallback({ event: messageEvent({ user: 'UPERSON01', text: 'forged' }) });
    const forged = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body, {
      wrongSecret: 'not-the-secret-at-all-000',
    });
    expect(forged.status).toBe(401);
    expect(forged.json).toMatchObject({ error: { code: 'bad_signature' } });
    const unsigned = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body, { unsigned: true });
    expect(unsigned.status).toBe(401);
    const challenge = await postSlackEvent(
      h.eventsUrl,
      SIGNING_SECRET,
      { type: 'url_verification', challenge: 'x' },
      { wrongSecret: 'not-the-secret-at-all-000' },
    );
    expect(challenge.status).toBe(401);
    const command = await postSlashCommand(
      h.commandsUrl,
      SIGNING_SECRET,
      slashCommandFields({ command: '/status' }),
      {
        wrongSecret: 'not-the-secret-at-all-000',
      },
    );
    expect(command.status).toBe(401);
    expect(h.sink.events).toEqual([]);
  });

  it('refuses a correctly signed request older than five minutes (a replay) with 401', async () => {
    const body = eventCallback({ event: messageEvent({ user: 'UPERSON01', text: 'replayed' }) });
    const stale = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body, {
      timestamp: Math.floor(Date.now() / 1000) - 6 * 60,
    });
    expect(stale.status).toBe(401);
    expect(stale.json).toMatchObject({ error: { code: 'bad_signature' } });
    const recent = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, body, {
      timestamp: Math.floor(Date.now() / 1000) - 4 * 60,
    });
    expect(recent.status).toBe(200);
    expect(h.sink.events.map((e) => e.text)).toEqual(['replayed']);
  });

  it('takes a signed slash command as "/name args" and acks with an empty 200', async () => {
    const fields = slashCommandFields({
      command: '/status',
      text: ' verbose ',
      user: 'UPERSON03',
      channel: 'C0OPS',
    });
    const response = await postSlashCommand(h.commandsUrl, SIGNING_SECRET, fields);
    expect(response.status).toBe(200);
    expect(response.text).toBe('');
    expect(h.sink.events).toEqual([
      {
        eventId: fields.trigger_id,
        userId: 'UPERSON03',
        text: '/status verbose',
        address: { channel: 'slack', conversation: 'C0OPS' },
      },
    ]);
    await h.adapter.send(firstAddress(h.sink), 'all good');
    expect(h.fake.posted).toEqual([expect.objectContaining({ channel: 'C0OPS', text: 'all good' })]);
  });

  it('tells the person, ephemerally, when a slash command was not taken (Slack never redelivers one)', async () => {
    h.sink.failWith = new Error('redis down');
    const response = await postSlashCommand(
      h.commandsUrl,
      SIGNING_SECRET,
      slashCommandFields({ command: '/status' }),
    );
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ response_type: 'ephemeral' });
  });

  it('leaves the rest of the server alone: its JSON parser still parses', async () => {
    const reply = await h.server.inject({ method: 'POST', url: '/echo-json', payload: { a: 1 } });
    expect(reply.json()).toEqual({ got: { a: 1 } });
  });
});
