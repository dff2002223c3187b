import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { startWalletAgent, type WalletAgent } from '../../support/wallet-agent.js';
import { startWalletWorld, type WalletWorld } from '../../support/wallet-world.js';

/**
 * Two servers on one Redis share the wallet's intents, so its caps: sends racing on both never
 * pass the 24-hour cap together, and a restart (or the other server taking over) starts from
 * what was spent, not from zero.
 */
let redis: TestRedis;
let world: WalletWorld;
const agents: WalletAgent[] = [];

beforeAll(async () => {
  redis = await startRedis();
  world = await startWalletWorld({
    limits: { SOL: { perTransaction: '1', perDay: '2' } },
  });
  for (const node of ['a', 'b']) {
    agents.push(await startWalletAgent(world, { env: { REDIS_URL: redis.url, NODE_ID: node } }));
  }
});

afterAll(async () => {
  for (const agent of agents) await agent.agent.stop();
  await world?.close();
  await redis?.stop();
});

describe('the wallet on Redis, shared by two servers', () => {
  it('lets racing sends on both servers pass the daily cap never', async () => {
    const friend = world.friend.publicKey.toBase58();
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (agents[i % 2] as WalletAgent).say('owner', `/wallet send 0.5 SOL ${friend}`),
      ),
    );
    const sent = replies.filter((r) => /confirmed|finalized/.test(r));
    const refused = replies.filter((r) => r.startsWith('Refused (over_daily_cap)'));
    expect(sent).toHaveLength(4);
    expect(refused).toHaveLength(6);
    expect(await world.solana.balance(world.friend.publicKey)).toBe(2_000_000_000n);
  });

  it('keeps what was spent across a restart, and shows one history on both', async () => {
    const friend = world.friend.publicKey.toBase58();
    await (agents[0] as WalletAgent).agent.stop();
    agents[0] = await startWalletAgent(world, { env: { REDIS_URL: redis.url, NODE_ID: 'a' } });
    expect(await (agents[0] as WalletAgent).say('owner', `/wallet send 0.1 SOL ${friend}`)).toMatch(
      /^Refused \(over_daily_cap\)/,
    );
    const historyA = await (agents[0] as WalletAgent).say('owner', '/wallet history');
    const historyB = await (agents[1] as WalletAgent).say('owner', '/wallet history');
    expect(historyA).toBe(historyB);
    expect(await world.solana.landed()).toHaveLength(4);
  });

  it('refuses while Redis is away: the policy cannot read its state', async () => {
    const friend = world.friend.publicKey.toBase58();
    await redis.down();
    const reply = await (agents[1] as WalletAgent)
      .say('owner', `/wallet send 0.1 SOL ${friend}`)
      .catch((error: Error) => error.message);
    // Either the turn itself cannot start (memory is on Redis too) or the wallet refuses; nothing is sent.
    expect(reply).toMatch(/memory_unavailable|policy_unavailable/);
    expect(await world.solana.landed()).toHaveLength(4);
    await redis.up();
    // Back to serving before the agents stop, so their shutdown does not wait on a reconnect.
    for (const agent of agents) {
      const deadline = Date.now() + 30_000;
      while (
        !(await agent.say('owner', '/wallet history').then(
          () => true,
          () => false,
        ))
      ) {
        if (Date.now() > deadline) throw new Error('the agent did not reconnect to Redis');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  });
});
