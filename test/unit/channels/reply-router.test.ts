import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type ChannelAdapter,
  type ChannelHealth,
  type ChannelName,
  ChannelSendError,
  type ReplyAddress,
} from '../../../src/channels/channel-adapter.js';
import { CHANNELS_DEFAULTS } from '../../../src/channels/channels-config.js';
import { type OutboundReply, ReplyRouter } from '../../../src/channels/reply-router.js';
import { LogIdentityStore } from '../../../src/core/identity/log-identity-store.js';
import type { QueuedJob } from '../../../src/jobs/durable-queue.js';

/** A platform whose sends succeed or fail as the test says. */
class ScriptedChannel implements ChannelAdapter {
  sent: { address: ReplyAddress; text: string }[] = [];
  failWith: ChannelSendError | undefined;
  state: ChannelHealth = { connected: true, connectedSince: 0, consecutiveSendFailures: 0 };
  constructor(readonly name: ChannelName) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async send(address: ReplyAddress, text: string): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.sent.push({ address, text });
  }
  health(): ChannelHealth {
    return this.state;
  }
}

const config = { ...CHANNELS_DEFAULTS.outbox, failoverAfterMs: 30_000, retryBaseMs: 500, retryMaxMs: 8000 };

describe('ReplyRouter', () => {
  let now: number;
  let telegram: ScriptedChannel;
  let discord: ScriptedChannel;
  let identity: LogIdentityStore;
  let router: ReplyRouter;
  const outcomes: string[] = [];
  const tgAddress: ReplyAddress = { channel: 'telegram', conversation: '42', thread: '7' };
  const job = (attempt: number, addedAt = 0): QueuedJob<OutboundReply> => ({
    id: 'telegram:1',
    data: { personId: 'telegram:100', address: tgAddress, text: 'the answer' },
    attempt,
    addedAt,
  });

  beforeEach(async () => {
    now = 0;
    outcomes.length = 0;
    telegram = new ScriptedChannel('telegram');
    discord = new ScriptedChannel('discord');
    identity = new LogIdentityStore({
      dataDir: mkdtempSync(join(tmpdir(), 'router-')),
      logger: pino({ level: 'silent' }),
    });
    await identity.open();
    // The person talked on Telegram, then linked and used Discord.
    await identity.touch('telegram', '100', tgAddress, 1);
    const code = await identity.issueLinkCode('telegram:100', 600_000);
    expect(await identity.redeemLinkCode(code, 'discord', '200')).toMatchObject({ status: 'linked' });
    await identity.touch('discord', '200', { channel: 'discord', conversation: 'dm-9', thread: 'm1' }, 2);
    router = new ReplyRouter({
      adapters: [telegram, discord],
      identity,
      config,
      logger: pino({ level: 'silent' }),
      onOutcome: (channel, outcome) => outcomes.push(`${channel}:${outcome}`),
      now: () => now,
    });
  });

  it('delivers to the channel the message came from', async () => {
    expect(await router.deliver(job(1))).toEqual({ done: true });
    expect(telegram.sent).toEqual([{ address: tgAddress, text: 'the answer' }]);
    expect(discord.sent).toEqual([]);
    expect(outcomes).toEqual(['telegram:sent']);
  });

  it('retries a failing channel with back-off, honouring retry-after, then fails over once it has been down long enough', async () => {
    telegram.failWith = new ChannelSendError('connect ECONNREFUSED');
    expect(await router.deliver(job(1))).toEqual({ retryInMs: 500 });
    now = 1000;
    telegram.failWith = new ChannelSendError('429', { retryAfterMs: 3000 });
    expect(await router.deliver(job(2))).toEqual({ retryInMs: 3000 });
    // Back-off never overshoots the moment the channel counts as down.
    now = 29_000;
    telegram.failWith = new ChannelSendError('connect ECONNREFUSED');
    expect(await router.deliver(job(6))).toEqual({ retryInMs: 1000 });
    expect(discord.sent).toEqual([]);

    now = 30_000;
    expect(await router.deliver(job(7))).toEqual({ done: true });
    expect(discord.sent).toEqual([
      {
        address: { channel: 'discord', conversation: 'dm-9' },
        text: '(Telegram is unreachable right now, so this reply comes here.)\nthe answer',
      },
    ]);
    expect(outcomes.at(-1)).toBe('telegram:failed_over');

    // While Telegram stays down, the next reply goes straight to Discord.
    now = 31_000;
    expect(await router.deliver(job(1, 31_000))).toEqual({ done: true });
    expect(discord.sent).toHaveLength(2);
  });

  it('uses the channel again once it has reconnected', async () => {
    telegram.failWith = new ChannelSendError('down');
    await router.deliver(job(1));
    now = 40_000;
    await router.deliver(job(2));
    expect(discord.sent).toHaveLength(1);
    telegram.failWith = undefined;
    telegram.state = { connected: true, connectedSince: 41_000, consecutiveSendFailures: 0 };
    now = 42_000;
    expect(await router.deliver(job(1, 42_000))).toEqual({ done: true });
    expect(telegram.sent).toHaveLength(1);
    expect(discord.sent).toHaveLength(1);
  });

  it('fails over at once when the platform refuses the reply for good', async () => {
    telegram.failWith = new ChannelSendError('bot was blocked by the user', { permanent: true });
    expect(await router.deliver(job(1))).toEqual({ done: true });
    expect(discord.sent).toHaveLength(1);
    // A refusal about one conversation does not mark the whole channel down.
    expect(router.isDown('telegram', 1_000_000)).toBe(false);
  });

  it('keeps retrying when no other channel can take it, and gives up (counted) after giveUpAfterMs', async () => {
    telegram.failWith = new ChannelSendError('down');
    discord.failWith = new ChannelSendError('down too');
    now = 60_000;
    await router.deliver(job(1));
    now = 120_000;
    expect(await router.deliver(job(2))).toMatchObject({ retryInMs: expect.any(Number) });
    now = config.giveUpAfterMs + 1;
    expect(await router.deliver(job(50))).toEqual({ done: true });
    expect(outcomes.at(-1)).toBe('telegram:lost');
    expect(telegram.sent).toEqual([]);
    expect(discord.sent).toEqual([]);
  });
});
