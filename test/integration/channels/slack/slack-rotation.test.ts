import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChannelEvent, ChannelSendError } from '../../../../src/channels/channel-adapter.js';
import type { SlackAdapter } from '../../../../src/channels/slack/slack-adapter.js';
import { isSlackRenewError } from '../../../../src/channels/slack/slack-secrets.js';
import {
  appMentionEvent,
  eventCallback,
  type FakeSlack,
  messageEvent,
  postSlackEvent,
  postSlashCommand,
  slashCommandFields,
  startFakeSlack,
} from '../../../fakes/fake-slack.js';
import {
  channelsConfig,
  eventually,
  type HttpHarness,
  newAdapter,
  type RecordingSink,
  recordingSink,
  SIGNING_SECRET,
  startHttpHarness,
} from './slack-harness.js';

const NEW_SIGNING_SECRET = 'rotated-signing-secret-fedcba9876543210';
const WRONG_SIGNING_SECRET = 'never-issued-signing-secret-00000000';
const NEW_BOT_TOKEN = 'xoxb-rotated-bot-token-2';
const NEW_APP_TOKEN = 'xapp-rotated-app-token-2';
const GRACE_MS = 60_000;

/** Every line the adapter logs (the Slack libraries' debug lines included), to look for secrets in. */
function capturedLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
  return { logger, lines };
}

function renewedLines(lines: readonly string[]): unknown[] {
  return lines
    .map((line) => JSON.parse(line) as { msg?: string; secrets?: unknown })
    .filter((entry) => entry.msg === 'slack secrets renewed')
    .map((entry) => entry.secrets);
}

function expectNoSecretIn(texts: readonly string[], secrets: readonly string[]): void {
  // Asserted as a list of offenders so a failure shows which line leaked, not just `false`.
  const leaks = texts.filter((text) => secrets.some((secret) => text.includes(secret)));
  expect(leaks).toEqual([]);
}

function mention(fake: FakeSlack, text: string, eventId: string): Record<string, unknown> {
  return eventCallback({
    event: appMentionEvent({ user: 'UPERSON01', text: `<@${fake.botUserId}> ${text}` }),
    eventId,
  });
}

describe('Slack adapter: secret rotation, HTTP mode', () => {
  let h: HttpHarness | undefined;

  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('takes a rotated signing secret: the new one verifies, the old one only within its grace period, a wrong one never', async () => {
    let nowMs = Date.now();
    const { logger, lines } = capturedLogger();
    h = await startHttpHarness({ now: () => nowMs, secretGraceMs: GRACE_MS, logger });
    const harness = h;
    const signedNow = () => ({ timestamp: Math.floor(nowMs / 1000) });
    const post = (secret: string, eventId: string) =>
      postSlackEvent(harness.eventsUrl, secret, mention(harness.fake, eventId, eventId), signedNow());

    // Before the rotation the new secret means nothing: the checks below can tell the two apart.
    expect((await post(NEW_SIGNING_SECRET, 'Ev0BEFORE1')).status).toBe(401);
    expect((await post(SIGNING_SECRET, 'Ev0BEFORE2')).status).toBe(200);

    await harness.adapter.renewSecrets(channelsConfig(harness.fake, { signingSecret: NEW_SIGNING_SECRET }));
    expect(renewedLines(lines)).toEqual([['signingSecret']]);

    expect((await post(NEW_SIGNING_SECRET, 'Ev0NEW1')).status).toBe(200);
    const command = await postSlashCommand(
      harness.commandsUrl,
      NEW_SIGNING_SECRET,
      slashCommandFields({ command: '/status', text: 'rotated' }),
      signedNow(),
    );
    expect(command.status).toBe(200);
    expect(command.text).toBe('');

    nowMs += GRACE_MS / 2;
    expect((await post(SIGNING_SECRET, 'Ev0OLDINGRACE')).status).toBe(200);
    const wrong = await post(WRONG_SIGNING_SECRET, 'Ev0WRONG1');
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ error: { code: 'bad_signature' } });

    // The replay window still holds for the new secret: a correctly signed but old request is refused.
    const stale = await postSlackEvent(
      harness.eventsUrl,
      NEW_SIGNING_SECRET,
      mention(harness.fake, 'stale', 'Ev0STALE1'),
      { timestamp: Math.floor(nowMs / 1000) - 10 * 60 },
    );
    expect(stale.status).toBe(401);

    nowMs += GRACE_MS / 2 + 1_000;
    const expired = await post(SIGNING_SECRET, 'Ev0OLDAFTER');
    expect(expired.status).toBe(401);
    expect((await post(NEW_SIGNING_SECRET, 'Ev0NEW2')).status).toBe(200);

    expect(harness.sink.events.map((e) => e.eventId)).toEqual([
      'Ev0BEFORE2',
      'Ev0NEW1',
      expect.stringMatching(/^\d+\./), // the slash command's id
      'Ev0OLDINGRACE',
      'Ev0NEW2',
    ]);
    expect(harness.sink.events[2]?.text).toBe('/status rotated');
    expectNoSecretIn(
      [...lines, wrong.text, stale.text, expired.text],
      [SIGNING_SECRET, NEW_SIGNING_SECRET, WRONG_SIGNING_SECRET],
    );
  });

  it('takes a rotated bot token: replies and metadata look-ups go out with it after the old one is revoked', async () => {
    const { logger, lines } = capturedLogger();
    h = await startHttpHarness({ logger });
    const { fake, adapter } = h;
    const oldToken = fake.botToken;
    const address = { channel: 'slack', conversation: 'C0GENERAL', thread: '1700000000.000100' } as const;

    fake.rotateTokens({ botToken: NEW_BOT_TOKEN });
    fake.revokeToken(oldToken);
    // The adapter still holds the revoked token: Slack refuses it, and the outbox is told it is permanent.
    const refused = await adapter.send(address, 'before').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ChannelSendError);
    expect((refused as ChannelSendError).message).toMatch(/token_revoked/);
    expect(fake.posted).toEqual([]);

    const callsBefore = fake.calls.length;
    await adapter.renewSecrets(channelsConfig(fake));
    expect(renewedLines(lines)).toEqual([['botToken']]);

    await adapter.send(address, 'after');
    // A retry after a crash reads the thread back first (conversations.replies), with the new token too.
    await adapter.send(address, 'again', { replyId: 'r-1', mayRepeat: true });
    expect(fake.posted.map((p) => p.text)).toEqual(['after', 'again']);
    const since = fake.calls.slice(callsBefore);
    expect(since.map((c) => c.method)).toEqual([
      'chat.postMessage',
      'conversations.replies',
      'chat.postMessage',
    ]);
    expect(since.map((c) => c.token)).toEqual([NEW_BOT_TOKEN, NEW_BOT_TOKEN, NEW_BOT_TOKEN]);
    expect(adapter.health().consecutiveSendFailures).toBe(0);
    expectNoSecretIn(
      [...lines, String(refused), JSON.stringify(adapter.health())],
      [oldToken, NEW_BOT_TOKEN],
    );
  });

  it('is a no-op when no secret changed, and only notes other settings as needing a restart', async () => {
    const { logger, lines } = capturedLogger();
    h = await startHttpHarness({ logger });
    const { fake, adapter } = h;
    const callsBefore = fake.calls.length;
    const linesBefore = lines.length;

    await adapter.renewSecrets(channelsConfig(fake));
    await adapter.renewSecrets({ ...channelsConfig(fake), slack: undefined });
    expect(fake.calls.length).toBe(callsBefore);
    expect(lines.length).toBe(linesBefore);

    await adapter.renewSecrets(channelsConfig(fake, { eventsPath: '/elsewhere' }));
    const entries = lines.slice(linesBefore).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries).toEqual([
      expect.objectContaining({
        msg: 'slack settings changed; they apply after a restart',
        settings: ['eventsPath'],
      }),
    ]);
    expect(renewedLines(lines)).toEqual([]);
    expect(fake.calls.length).toBe(callsBefore);
    // Still served where it was, with the secret it had.
    const response = await postSlackEvent(h.eventsUrl, SIGNING_SECRET, mention(fake, 'still', 'Ev0STILL1'));
    expect(response.status).toBe(200);
  });
});

describe('Slack adapter: secret rotation, Socket Mode', () => {
  let fake: FakeSlack | undefined;
  let adapter: SlackAdapter | undefined;

  afterEach(async () => {
    await adapter?.stop();
    await fake?.close();
    adapter = undefined;
    fake = undefined;
  });

  async function startSocket(
    logger?: pino.Logger,
  ): Promise<{ fake: FakeSlack; adapter: SlackAdapter; sink: RecordingSink }> {
    fake = await startFakeSlack();
    adapter = newAdapter(
      fake,
      { mode: 'socket', appToken: fake.appToken, signingSecret: undefined },
      logger === undefined ? {} : { logger },
    );
    const sink = recordingSink();
    await adapter.start(sink, []);
    return { fake, adapter, sink };
  }

  it('switches to a rotated app token while connected: no event lost or taken twice around the switch, all answered', async () => {
    const { logger, lines } = capturedLogger();
    const { fake, adapter, sink } = await startSocket(logger);
    const oldAppToken = fake.appToken;
    const published: string[] = [];
    const publish = (text: string, ackTimeoutMs = 5_000) => {
      const eventId = `Ev0${text.toUpperCase()}`;
      published.push(eventId);
      return fake.publishEvent(eventCallback({ event: messageEvent({ user: 'UPERSON01', text }), eventId }), {
        ackTimeoutMs,
      });
    };

    for (const text of ['pre1', 'pre2', 'pre3']) publish(text);
    await sink.waitFor(3);

    // One event is still being taken by the agent when the switch happens: its ack can only go
    // out on the old socket, so that socket must not close before it does.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let slowEntered = false;
    const receive = sink.receive;
    sink.receive = async (event: ChannelEvent) => {
      if (event.text === 'slow') {
        slowEntered = true;
        await gate;
      }
      await receive(event);
    };
    publish('slow');
    await eventually(() => slowEntered, 5_000, 'the slow event to reach the agent');

    fake.rotateTokens({ appToken: NEW_APP_TOKEN });
    const renewal = adapter.renewSecrets(
      channelsConfig(fake, { mode: 'socket', appToken: NEW_APP_TOKEN, signingSecret: undefined }),
    );
    await eventually(() => fake.socketsByToken()[NEW_APP_TOKEN] === 1, 5_000, 'the new socket');
    // Both sockets are open now; Slack sends new events to the new one.
    for (const text of ['mid1', 'mid2', 'mid3']) publish(text);
    await sink.waitFor(6);
    release();
    await renewal;

    expect(fake.socketsByToken()).toEqual({ [NEW_APP_TOKEN]: 1 });
    fake.revokeToken(oldAppToken);
    for (const text of ['post1', 'post2', 'post3']) publish(text);
    await sink.waitFor(10);
    await eventually(() => fake.unacked === 0, 10_000, 'every event to be acked');

    const taken = sink.events.map((e) => e.eventId);
    expect([...taken].sort()).toEqual([...published].sort());
    expect(taken).toHaveLength(10);
    expect(new Set(fake.acks.map((a) => a.envelope_id)).size).toBe(10);
    expect(fake.acks).toHaveLength(10);
    // Opened the second socket before closing the first: no moment without a connection.
    expect(fake.peakSockets).toBe(2);
    expect(fake.sockets).toBe(1);
    const opens = fake.calls.filter((c) => c.method === 'apps.connections.open').map((c) => c.token);
    expect(opens).toEqual([oldAppToken, NEW_APP_TOKEN]);
    expect(adapter.health().connected).toBe(true);
    expect(renewedLines(lines)).toEqual([['appToken']]);

    // Every event taken around and after the switch is answered.
    const answered = sink.events.filter((e) => !e.text.startsWith('pre'));
    for (const event of answered) await adapter.send(event.address, `re: ${event.text}`);
    expect(fake.posted.map((p) => p.text).sort()).toEqual([
      're: mid1',
      're: mid2',
      're: mid3',
      're: post1',
      're: post2',
      're: post3',
      're: slow',
    ]);
    expectNoSecretIn(lines, [oldAppToken, NEW_APP_TOKEN, fake.botToken]);
  });

  it('keeps its connection when Slack refuses the new app token, and says so without the token', async () => {
    const { logger, lines } = capturedLogger();
    const { fake, adapter, sink } = await startSocket(logger);
    const bogus = 'xapp-never-issued-token-9';

    const error = await adapter
      .renewSecrets(channelsConfig(fake, { mode: 'socket', appToken: bogus, signingSecret: undefined }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isSlackRenewError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'slack_app_token_refused', secret: 'appToken' });
    expect(String((error as Error).message)).toMatch(/invalid_auth/);

    expect(fake.socketsByToken()).toEqual({ [fake.appToken]: 1 });
    expect(adapter.health().connected).toBe(true);
    const envelopeId = fake.publishEvent(
      eventCallback({ event: messageEvent({ user: 'UP1', text: 'still' }) }),
    );
    await fake.waitForAck(envelopeId);
    expect(sink.events.map((e) => e.text)).toEqual(['still']);
    expect(renewedLines(lines)).toEqual([]);
    expectNoSecretIn([...lines, String(error), JSON.stringify(error)], [bogus, fake.appToken]);
  });

  it('is a no-op when the same configuration comes again', async () => {
    const { fake, adapter } = await startSocket();
    const callsBefore = fake.calls.length;
    await adapter.renewSecrets(
      channelsConfig(fake, { mode: 'socket', appToken: fake.appToken, signingSecret: undefined }),
    );
    expect(fake.calls.length).toBe(callsBefore);
    expect(fake.peakSockets).toBe(1);
    expect(fake.sockets).toBe(1);
  });

  it('switches only the bot token of an adapter that was never started, and connects with the new app token once started', async () => {
    fake = await startFakeSlack();
    const sender = newAdapter(fake, { mode: 'socket', appToken: fake.appToken, signingSecret: undefined });
    adapter = sender;
    const oldBotToken = fake.botToken;
    fake.rotateTokens({ botToken: NEW_BOT_TOKEN, appToken: NEW_APP_TOKEN });
    fake.revokeToken(oldBotToken);

    await sender.renewSecrets(
      channelsConfig(fake, { mode: 'socket', appToken: NEW_APP_TOKEN, signingSecret: undefined }),
    );
    // Nothing was connected by the renewal itself.
    expect(fake.calls).toEqual([]);
    expect(fake.peakSockets).toBe(0);

    await sender.send({ channel: 'slack', conversation: 'D0DIRECT1' }, 'hello');
    expect(fake.posted.map((p) => p.text)).toEqual(['hello']);
    expect(fake.calls.map((c) => [c.method, c.token])).toEqual([['chat.postMessage', NEW_BOT_TOKEN]]);

    const sink = recordingSink();
    await sender.start(sink, []);
    expect(fake.calls.filter((c) => c.method === 'apps.connections.open').map((c) => c.token)).toEqual([
      NEW_APP_TOKEN,
    ]);
    const envelopeId = fake.publishEvent(eventCallback({ event: messageEvent({ user: 'UP1', text: 'hi' }) }));
    await fake.waitForAck(envelopeId);
    expect(sink.events.map((e) => e.text)).toEqual(['hi']);
  });
});
