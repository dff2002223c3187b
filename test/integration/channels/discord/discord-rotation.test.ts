import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChannelEvent, ChannelSendError } from '../../../../src/channels/channel-adapter.js';
import { type ChannelsConfig, channelsSchema } from '../../../../src/channels/channels-config.js';
import { DiscordAdapter } from '../../../../src/channels/discord/discord-adapter.js';
import { RedisDiscordCursorStore } from '../../../../src/channels/discord/redis-cursor-store.js';
import { type FakeDiscord, startFakeDiscord } from '../../../fakes/fake-discord.js';
import { startRedis, type TestRedis } from '../../../support/redis-server.js';
import {
  configFor,
  connected,
  eventually,
  type LogLine,
  RecordingSink,
  type Started,
  startAdapter,
} from './discord-harness.js';

/** The rotated token: what the Developer Portal's "Reset Token" hands out. */
const NEW_TOKEN = 'MTEyMjMzNDQ1NTY2Nzc4ODk5.rotated.discord-bot-token-for-tests';
const USER = '330000000000000009';

/** Answers every event it takes, in the background, as the agent's outbox would. */
class EchoSink extends RecordingSink {
  adapter: DiscordAdapter | undefined;
  readonly sendErrors: unknown[] = [];

  override async receive(event: ChannelEvent): Promise<void> {
    await super.receive(event);
    const adapter = this.adapter;
    if (adapter === undefined) throw new Error('EchoSink has no adapter yet');
    void adapter.send(event.address, `echo: ${event.text}`).catch((error: unknown) => {
      this.sendErrors.push(error);
    });
  }
}

/** The `channels` section as the agent's config parser makes it, with this Discord token. */
function channelsWith(fake: FakeDiscord, botToken: string, guildIds: string[] = []): ChannelsConfig {
  return channelsSchema.parse({ discord: { ...configFor(fake, guildIds), botToken } });
}

let fake: FakeDiscord;
let redis: TestRedis;
let client: Redis;
let run: Started | undefined;
let prefix = 0;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});
// A fresh fake per test: tests revoke tokens.
beforeEach(async () => {
  fake = await startFakeDiscord();
});
afterEach(async () => {
  await run?.adapter.stop();
  run = undefined;
  await fake.close();
});

const identifiesWith = (token: string) =>
  fake.gatewayOps.filter((o) => o.op === 2 && (o.d as { token?: unknown }).token === token);

/** Starts an echoing adapter with Redis cursors, connected. */
async function startEcho(): Promise<{ run: Started; sink: EchoSink }> {
  const sink = new EchoSink();
  prefix += 1;
  const cursors = new RedisDiscordCursorStore(client, `rotation-${prefix}-${Date.now()}`);
  const started = await startAdapter(fake, { cursors, sink });
  sink.adapter = started.adapter;
  await connected(started.adapter);
  return { run: started, sink };
}

/**
 * An echo adapter connected with the fake's token that has handed on one message ('before'):
 * the starting point of a rotation. `run` is set for the cleanup.
 */
async function startAfterFirstMessage() {
  const started = await startEcho();
  run = started.run;
  const dm = fake.dmChannelFor(USER);
  const oldToken = fake.token;
  const m1 = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'before' });
  await eventually(() => expect(started.sink.events.map((e) => e.eventId)).toEqual([m1]));
  return { run: started.run, sink: started.sink, dm, oldToken, m1 };
}

function expectNoTokenIn(logs: LogLine[], health: unknown, tokens: string[]): void {
  const text = JSON.stringify(logs) + JSON.stringify(health);
  for (const token of tokens) expect(text).not.toContain(token);
}

describe('discord bot token rotation (renewSecrets)', () => {
  it('moves a connected session to the new token: nothing posted around the switch is lost or handed on twice', async () => {
    const { run: started, sink, dm, oldToken, m1 } = await startAfterFirstMessage();
    run = started;
    await eventually(() => expect(fake.sent.map((m) => m.content)).toEqual(['echo: before']));

    fake.acceptToken(NEW_TOKEN);
    const renewing = run.adapter.renewSecrets(channelsWith(fake, NEW_TOKEN));
    // Posted while the old session is being closed (its events are no longer taken) ...
    const m2 = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'during the switch' });
    await renewing;
    // ... and while no session is connected yet: both only a read-back can find.
    const m3 = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'between sessions' });
    await connected(run.adapter);
    // Connected on a session of the new token before the old one is revoked.
    expect(identifiesWith(NEW_TOKEN)).toHaveLength(1);
    // Discord resets the old token: its sessions are closed and REST refuses it.
    fake.revokeToken(oldToken);
    const m4 = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'after the switch' });

    const all = [m1, m2, m3, m4].sort();
    await eventually(() => expect(sink.events.map((e) => e.eventId).sort()).toEqual(all));
    // A last message through the live session: once it is in, the read-back is long done.
    const m5 = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'last' });
    await eventually(() => expect(sink.events.map((e) => e.eventId)).toContain(m5));
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Each handed on exactly once, the read-back's overlap (m1) included.
    expect(sink.events.map((e) => e.eventId).sort()).toEqual([...all, m5].sort());

    // Every reply after the switch went out with the new token, one per message.
    await eventually(() => expect(fake.sent).toHaveLength(5));
    expect(sink.sendErrors).toEqual([]);
    const replies = fake.sent.map((m) => [m.content, m.token]);
    expect(replies[0]).toEqual(['echo: before', oldToken]);
    expect(replies.slice(1).sort()).toEqual(
      [
        ['echo: during the switch', NEW_TOKEN],
        ['echo: between sessions', NEW_TOKEN],
        ['echo: after the switch', NEW_TOKEN],
        ['echo: last', NEW_TOKEN],
      ].sort(),
    );
    // One new session, identified with the new token; the old one was closed, not resumed.
    expect(identifiesWith(NEW_TOKEN)).toHaveLength(1);
    expect(identifiesWith(oldToken)).toHaveLength(1);
    expect(fake.gatewayOps.filter((o) => o.op === 6)).toHaveLength(0);
    expect(fake.connections).toBe(1);
    // The revocation found no session of the old token left to close.
    expect(run.logs.some((l) => l.msg.startsWith('discord gateway closed with code'))).toBe(false);
    expect(run.logs.filter((l) => l.msg === 'discord bot token renewed')).toEqual([
      expect.objectContaining({ level: 30, reconnect: true }),
    ]);
    expectNoTokenIn(run.logs, run.adapter.health(), [oldToken, NEW_TOKEN]);
  });

  it('recovers with the new token after Discord revoked the old one first, reading back the gap', async () => {
    const { run: started, sink, dm, oldToken, m1 } = await startAfterFirstMessage();
    run = started;

    // The token is reset before the agent has the new one: the session closes with 4004 and
    // logins with the old token fail.
    fake.revokeToken(oldToken);
    await eventually(() => expect(run?.adapter.health().connected).toBe(false));
    const gap = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'while revoked' });
    expect(fake.deliveredMessages.has(gap)).toBe(false);
    // A reply meanwhile is refused, and left to the outbox to retry rather than dropped.
    const refused = await run.adapter.send({ channel: 'discord', conversation: dm }, 'not yet').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ChannelSendError);
    expect((refused as ChannelSendError).permanent).toBe(false);
    await eventually(() =>
      expect(run?.logs.some((l) => l.msg === 'discord login failed; retrying')).toBe(true),
    );

    fake.acceptToken(NEW_TOKEN);
    await run.adapter.renewSecrets(channelsWith(fake, NEW_TOKEN));
    await connected(run.adapter);
    const m3 = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'after' });
    await eventually(() => expect(sink.events.map((e) => e.eventId).sort()).toEqual([m1, gap, m3].sort()));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sink.events.map((e) => e.eventId).sort()).toEqual([m1, gap, m3].sort());

    await eventually(() =>
      expect(
        fake.sent
          .filter((m) => m.content !== 'echo: before')
          .map((m) => [m.content, m.token])
          .sort(),
      ).toEqual(
        [
          ['echo: while revoked', NEW_TOKEN],
          ['echo: after', NEW_TOKEN],
        ].sort(),
      ),
    );
    expect(identifiesWith(NEW_TOKEN)).toHaveLength(1);
    expectNoTokenIn(run.logs, run.adapter.health(), [oldToken, NEW_TOKEN]);
  });

  it('switches a never-started adapter (kept for REST replies) to the new token, without connecting', async () => {
    const logs: LogLine[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => logs.push(JSON.parse(line) as LogLine) },
    );
    const sender = new DiscordAdapter({ config: configFor(fake), logger });
    const dm = fake.dmChannelFor(USER);
    const oldToken = fake.token;
    try {
      await sender.send({ channel: 'discord', conversation: dm }, 'with the old token');
      fake.acceptToken(NEW_TOKEN);
      await sender.renewSecrets(channelsWith(fake, NEW_TOKEN));
      fake.revokeToken(oldToken);
      await sender.send({ channel: 'discord', conversation: dm }, 'with the new token');
      await sender.typing({ channel: 'discord', conversation: dm });

      expect(fake.sent.map((m) => [m.content, m.token])).toEqual([
        ['with the old token', oldToken],
        ['with the new token', NEW_TOKEN],
      ]);
      expect(fake.typing).toEqual([dm]);
      expect(fake.gatewayOps).toEqual([]);
      expect(fake.connections).toBe(0);
      expect(logs.filter((l) => l.msg === 'discord bot token renewed')).toEqual([
        expect.objectContaining({ level: 30, reconnect: false }),
      ]);
      expectNoTokenIn(logs, sender.health(), [oldToken, NEW_TOKEN]);
    } finally {
      await sender.stop();
    }
  });

  it('does nothing for an unchanged token or a config without discord: no reconnect', async () => {
    const started = await startEcho();
    run = started.run;
    const { sink } = started;
    const before = run.adapter.health();
    const identifies = fake.gatewayOps.filter((o) => o.op === 2).length;

    // Other settings differ (they need a restart and are ignored); the token does not.
    await run.adapter.renewSecrets(channelsWith(fake, fake.token, [fake.guilds[0]?.id ?? '1']));
    await run.adapter.renewSecrets(channelsSchema.parse({}));
    // A switch would have marked the session disconnected before resolving.
    expect(run.adapter.health()).toMatchObject({ connected: true, connectedSince: before.connectedSince });

    const dm = fake.dmChannelFor(USER);
    const id = fake.sendMessageCreate({ channelId: dm, authorId: USER, content: 'still here' });
    await eventually(() => expect(sink.events.map((e) => e.eventId)).toEqual([id]));
    await eventually(() => expect(fake.sent.map((m) => m.token)).toEqual([fake.token]));
    expect(fake.gatewayOps.filter((o) => o.op === 2)).toHaveLength(identifies);
    expect(fake.gatewayOps.filter((o) => o.op === 6)).toHaveLength(0);
    expect(fake.connections).toBe(1);
    expect(run.logs.some((l) => l.msg === 'discord bot token renewed')).toBe(false);
  });
});
