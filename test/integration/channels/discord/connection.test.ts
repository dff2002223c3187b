import { GatewayIntentBits } from 'discord.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDiscord, startFakeDiscord } from '../../../fakes/fake-discord.js';
import {
  COMMANDS,
  configFor,
  connected,
  defined,
  eventually,
  type Started,
  startAdapter,
} from './discord-harness.js';

let fake: FakeDiscord;
let run: Started;
const USER = '330000000000000001';
const DM = '430000000000000001';

beforeAll(async () => {
  fake = await startFakeDiscord({
    guilds: [
      { id: '530000000000000001', channelIds: ['630000000000000001'] },
      { id: '530000000000000002', channelIds: ['630000000000000002'] },
    ],
  });
});
afterAll(async () => {
  await fake.close();
});
afterEach(async () => {
  await run?.adapter.stop();
});

const ops = (op: number) => fake.gatewayOps.filter((o) => o.op === op);

describe('discord gateway connection', () => {
  it('identifies with the intents it needs, Message Content included', async () => {
    const identifies = ops(2).length;
    run = await startAdapter(fake);
    await connected(run.adapter);
    const identify = ops(2).slice(identifies)[0]?.d as { intents: number };
    const wanted =
      GatewayIntentBits.Guilds |
      GatewayIntentBits.GuildMessages |
      GatewayIntentBits.MessageContent |
      GatewayIntentBits.DirectMessages;
    expect(identify.intents).toBe(wanted);
  });

  it('resumes a dropped connection and gets the message sent during the gap exactly once', async () => {
    run = await startAdapter(fake);
    await connected(run.adapter);
    const before = fake.sendMessageCreate({ channelId: DM, authorId: USER, content: 'before the cut' });
    await eventually(() => expect(run.sink.events).toHaveLength(1));
    const identifies = ops(2).length;
    const resumes = ops(6).length;

    fake.dropConnection();
    const during = fake.sendMessageCreate({ channelId: DM, authorId: USER, content: 'during the gap' });
    await eventually(() => expect(run.adapter.health().connected).toBe(false), 1000);

    await eventually(() => expect(run.sink.events.map((e) => e.eventId)).toEqual([before, during]));
    await connected(run.adapter);
    const resume = ops(6).slice(resumes);
    expect(resume).toHaveLength(1);
    expect(resume[0]?.d).toMatchObject({
      token: fake.token,
      session_id: expect.any(String),
      seq: expect.any(Number),
    });
    expect(ops(2).length).toBe(identifies);
    // Nothing delivered twice, a moment later either.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(run.sink.events.map((e) => e.eventId)).toEqual([before, during]);
    expect(run.adapter.health().lastError).toBeUndefined();
  });

  it('follows an outage mid-session: disconnected while down, connected again when back', async () => {
    run = await startAdapter(fake);
    await connected(run.adapter);
    await fake.down();
    try {
      await eventually(() =>
        expect(run.adapter.health()).toMatchObject({
          connected: false,
          lastError: expect.stringMatching(/reconnecting/),
        }),
      );
    } finally {
      await fake.up();
    }
    await connected(run.adapter, 5000);
    const id = fake.sendMessageCreate({ channelId: DM, authorId: USER, content: 'back again' });
    await eventually(() => expect(run.sink.events.map((e) => e.eventId)).toEqual([id]));
  });

  it('starts while Discord is unreachable, reports it, then connects when it is back', async () => {
    await fake.down();
    try {
      const started = Date.now();
      run = await startAdapter(fake);
      expect(Date.now() - started).toBeLessThan(500);
      await eventually(() => {
        const health = run.adapter.health();
        expect(health.connected).toBe(false);
        expect(health.lastError).toMatch(/\S/);
      });
      // Still retrying in the background.
      await eventually(() =>
        expect(run.logs.filter((l) => l.msg === 'discord login failed; retrying').length).toBeGreaterThan(1),
      );
    } finally {
      await fake.up();
    }
    await connected(run.adapter, 5000);
    const id = fake.sendMessageCreate({ channelId: DM, authorId: USER, content: 'are you there?' });
    await eventually(() => expect(run.sink.events.map((e) => e.eventId)).toEqual([id]));
  });

  it('keeps retrying a rejected token without throwing from start()', async () => {
    run = await startAdapter(fake, {
      config: { ...configFor(fake), botToken: 'not-the-right-token-at-all-000000' },
    });
    await eventually(() => expect(run.adapter.health().lastError).toMatch(/token/i));
    expect(run.adapter.health().connected).toBe(false);
  });

  it('stops promptly and idempotently, also while retrying a login', async () => {
    await fake.down();
    try {
      run = await startAdapter(fake, { backoff: { initialMs: 10_000, maxMs: 10_000 } });
      await eventually(() => expect(run.adapter.health().lastError).toBeDefined());
      const started = Date.now();
      await Promise.all([run.adapter.stop(), run.adapter.stop()]);
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      await fake.up();
    }
    const connections = fake.connections;
    expect(connections).toBe(0);
    run = await startAdapter(fake);
    await connected(run.adapter);
    expect(fake.connections).toBe(1);
    await run.adapter.stop();
    await run.adapter.stop();
    await eventually(() => expect(fake.connections).toBe(0));
    expect(run.adapter.health().connected).toBe(false);
  });
});

describe('discord slash command registration', () => {
  it('registers globally when no guilds are configured', async () => {
    const before = fake.commands.length;
    run = await startAdapter(fake, {
      commands: [
        ...COMMANDS,
        { name: 'Not Valid', summary: 'left out' },
        { name: 'long', summary: 'x'.repeat(150) },
      ],
    });
    await eventually(() => expect(fake.commands.length).toBe(before + 1));
    const registered = defined(fake.commands.at(-1), 'a registration');
    expect(registered.scope).toBe('global');
    expect(registered.applicationId).toBe(fake.applicationId);
    expect(registered.commands.map((c) => c.name)).toEqual(['help', 'status', 'link', 'unlink', 'long']);
    for (const command of registered.commands) {
      expect(command.description.length).toBeGreaterThan(0);
      expect(command.description.length).toBeLessThanOrEqual(100);
      expect(command.options).toEqual([expect.objectContaining({ type: 3, name: 'text', required: false })]);
    }
    expect(run.logs.some((l) => l.msg === 'discord slash command left out' && l.name === 'Not Valid')).toBe(
      true,
    );
  });

  it('registers in each configured guild, and not globally', async () => {
    const before = fake.commands.length;
    const guildIds = fake.guilds.map((g) => g.id);
    run = await startAdapter(fake, { config: configFor(fake, guildIds) });
    await eventually(() => expect(fake.commands.length).toBe(before + 2));
    const scopes = fake.commands.slice(before).map((c) => c.scope);
    expect(scopes.sort()).toEqual([...guildIds].sort());
    expect(fake.commands.slice(before).every((c) => c.commands.length === COMMANDS.length)).toBe(true);
  });

  it('logs a failed registration and retries it on the next reconnect', async () => {
    const before = fake.commands.length;
    fake.failNext('commands', 1, { status: 500 });
    run = await startAdapter(fake);
    await connected(run.adapter);
    await eventually(() =>
      expect(run.logs.some((l) => l.msg.startsWith('discord slash command registration failed'))).toBe(true),
    );
    expect(fake.commands.length).toBe(before);
    fake.dropConnection();
    await eventually(() => expect(fake.commands.length).toBe(before + 1));
    expect(fake.commands.at(-1)?.scope).toBe('global');
  });
});
