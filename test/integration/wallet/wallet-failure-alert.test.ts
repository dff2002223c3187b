import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeTelegram, startFakeTelegram } from '../../fakes/fake-telegram.js';
import { until } from '../../support/until.js';
import { startWalletAgent, type WalletAgent } from '../../support/wallet-agent.js';
import { startWalletWorld, type WalletWorld } from '../../support/wallet-world.js';

/**
 * A wallet transfer that fails on the chain alerts the owners once, on their chat, naming the
 * transfer. The failure is real: the local Solana runtime refuses a transfer of more SOL than the
 * wallet holds (the caps here allow it, so it reaches the chain).
 */

const OWNER_CHAT = 7070;

let world: WalletWorld;
let telegram: FakeTelegram;
let running: WalletAgent;

beforeAll(async () => {
  telegram = await startFakeTelegram();
  // The owners' chat, which the bot knows (a bot can only message chats it knows).
  telegram.addChat({ id: OWNER_CHAT, type: 'private', first_name: 'Owner' });
  world = await startWalletWorld({
    limits: { SOL: { perTransaction: '100', perDay: '200' } },
    extraConfig: {
      channels: { telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 } },
    },
  });
  running = await startWalletAgent(world, { env: { ALERT_NOTIFY: `telegram:${OWNER_CHAT}` } });
});

afterAll(async () => {
  await running?.agent.stop();
  await world?.close();
  await telegram?.close();
});

describe('a failed wallet transfer', () => {
  it('sends the owners exactly one alert naming the transfer', async () => {
    const friend = world.friend.publicKey;
    // The wallet holds 10 SOL: the cluster refuses 50 in its preflight check.
    const reply = await running.say('owner', `/wallet send 50 SOL ${friend.toBase58()}`);
    expect(reply).toMatch(/failed/);
    const id = /Transfer (\w+):/.exec(reply)?.[1];
    if (!id) throw new Error(`no transfer id in: ${reply}`);
    expect(await world.solana.balance(friend)).toBe(0n);
    expect(await world.solana.landed()).toHaveLength(0);

    const alerts = () =>
      telegram.sent.filter((m) => m.chatId === OWNER_CHAT && m.text.includes(`wallet transfer ${id} failed`));
    await until(() => alerts().length > 0, 10_000);
    // The reconciliation job (every second) and the confirmation wait go over it again: still one.
    await sleep(2500);
    expect(alerts()).toHaveLength(1);
    expect(alerts()[0]?.text).toMatch(new RegExp(`wallet transfer ${id} failed \\(see /wallet history\\)`));
    // Nothing else about the wallet reached the owners' chat.
    expect(telegram.sent.filter((m) => m.chatId === OWNER_CHAT)).toHaveLength(1);
  });
});
