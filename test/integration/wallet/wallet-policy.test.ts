import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi, textOf } from '../../fakes/fake-openai.js';
import { startWalletAgent, type WalletAgent } from '../../support/wallet-agent.js';
import { startWalletWorld, type WalletWorld } from '../../support/wallet-world.js';

/**
 * Every rule of the wallet's policy refusing what it must, through `/wallet` and the model's
 * `propose_transfer`, against a real runtime: a refusal changes nothing on the ledger.
 */
let world: WalletWorld;
let model: FakeOpenAi;
let agent: WalletAgent;
let clock = Date.now();

/** "propose <amount> <token> <recipient>" in the newest user message makes the model call the tool. */
function proposeFromLastMessage(body: { messages: { role: string; content: unknown }[] }) {
  const last = body.messages.at(-1);
  if (last?.role !== 'user') return undefined;
  const match = /propose (\S+) (\S+) (\S+)/.exec(textOf(last.content as string));
  if (!match) return undefined;
  return {
    name: 'propose_transfer',
    arguments: JSON.stringify({ amount: match[1], token: match[2], recipient: match[3], reason: 'test' }),
  };
}

beforeAll(async () => {
  world = await startWalletWorld();
  model = await startFakeOpenAi({ toolPlan: proposeFromLastMessage });
  agent = await startWalletAgent(world, {
    env: { OPENAI_BASE_URL: model.baseURL, OPENAI_API_KEY: 'sk-test-0123456789' },
    now: () => clock,
  });
});

afterAll(async () => {
  await agent?.agent.stop();
  await model?.close();
  await world?.close();
});

/** The model's proposal; resolves with the intent id the tool reported. */
async function propose(
  who: string,
  amount: string,
  token: string,
  recipient: string,
): Promise<{ id: string; status: string }> {
  const reply = await agent.say(who, `please propose ${amount} ${token} ${recipient}`);
  const match = /"status":"(\w+)","id":"(\w+)"/.exec(reply.replaceAll('\\"', '"'));
  if (!match) throw new Error(`no proposal in: ${reply}`);
  return { status: match[1] as string, id: match[2] as string };
}

describe('the wallet policy', () => {
  const friend = () => world.friend.publicKey.toBase58();

  it.each([
    ['a non-owner sending', 'mallory', () => `/wallet send 0.1 SOL ${friend()}`, 'not_owner'],
    ['over the per-transfer cap', 'owner', () => `/wallet send 1.5 SOL ${friend()}`, 'over_transaction_cap'],
    [
      'a recipient not on the allowlist',
      'owner',
      () => `/wallet send 0.1 SOL ${world.stranger.publicKey.toBase58()}`,
      'not_allowlisted',
    ],
    [
      'more decimals than the token has',
      'owner',
      () => `/wallet send 0.0000000001 SOL ${friend()}`,
      'bad_amount',
    ],
    ['more decimals than USDC has', 'owner', () => `/wallet send 1.0000001 USDC ${friend()}`, 'bad_amount'],
    ['a negative amount', 'owner', () => `/wallet send -1 SOL ${friend()}`, 'bad_amount'],
    ['an exponent', 'owner', () => `/wallet send 1e-3 SOL ${friend()}`, 'bad_amount'],
    ['words for an amount', 'owner', () => `/wallet send all SOL ${friend()}`, 'bad_amount'],
    ['a zero amount', 'owner', () => `/wallet send 0 SOL ${friend()}`, 'bad_amount'],
    ['a bad address', 'owner', () => '/wallet send 0.1 SOL not-an-address', 'bad_recipient'],
    ['an address that is too short', 'owner', () => '/wallet send 0.1 SOL 1111', 'bad_recipient'],
    [
      'the wallet itself',
      'owner',
      () => `/wallet send 0.1 SOL ${world.wallet.publicKey.toBase58()}`,
      'bad_recipient',
    ],
    ['an unknown token', 'owner', () => `/wallet send 1 DOGE ${friend()}`, 'unknown_token'],
    ['a non-owner approving', 'mallory', () => '/wallet approve abcdefghjk', 'not_owner'],
    ['approving what does not exist', 'owner', () => '/wallet approve abcdefghjk', 'not_pending'],
  ])('refuses %s', async (_case, who, command, code) => {
    const sentBefore = await world.solana.sent();
    expect(await agent.say(who, command())).toMatch(new RegExp(`^Refused \\(${code}\\)`));
    expect(await world.solana.sent()).toBe(sentBefore);
  });

  it('refuses an approval after it expired, and never sends it', async () => {
    const proposal = await propose('owner', '0.5', 'SOL', friend());
    expect(proposal.status).toBe('pending_approval');
    clock += 16 * 60_000; // The approval lives 15 minutes.
    expect(await agent.say('owner', `/wallet approve ${proposal.id}`)).toMatch(
      /^Refused \(approval_expired\)/,
    );
    expect(await agent.say('owner', `/wallet approve ${proposal.id}`)).toMatch(/^Refused \(not_pending\)/);
    expect(await world.solana.balance(world.friend.publicKey)).toBe(0n);
  });

  it('executes an approval once; a replayed approval is refused', async () => {
    const proposal = await propose('owner', '0.5', 'SOL', friend());
    expect(proposal.status).toBe('pending_approval');
    expect(await agent.say('mallory', `/wallet approve ${proposal.id}`)).toMatch(/^Refused \(not_owner\)/);
    expect(await agent.say('owner', `/wallet approve ${proposal.id}`)).toMatch(/confirmed|finalized/);
    expect(await agent.say('owner', `/wallet approve ${proposal.id}`)).toMatch(/^Refused \(not_pending\)/);
    expect(await world.solana.balance(world.friend.publicKey)).toBe(500_000_000n);
  });

  it('refuses a rejected transfer', async () => {
    const proposal = await propose('owner', '0.2', 'SOL', friend());
    expect(await agent.say('mallory', `/wallet reject ${proposal.id}`)).toMatch(/^Refused \(not_owner\)/);
    expect(await agent.say('owner', `/wallet reject ${proposal.id}`)).toMatch(/rejected/);
    expect(await agent.say('owner', `/wallet approve ${proposal.id}`)).toMatch(/^Refused \(not_pending\)/);
  });

  it('holds the rolling 24-hour cap, for approvals too, and frees it a day later', async () => {
    // 0.5 SOL went out above; the cap is 2 SOL a day.
    expect(await agent.say('owner', `/wallet send 1 SOL ${friend()}`)).toMatch(/confirmed|finalized/);
    const proposal = await propose('owner', '0.6', 'SOL', friend());
    expect(await agent.say('owner', `/wallet approve ${proposal.id}`)).toMatch(/^Refused \(over_daily_cap\)/);
    expect(await agent.say('owner', `/wallet send 0.6 SOL ${friend()}`)).toMatch(
      /^Refused \(over_daily_cap\)/,
    );
    expect(await world.solana.balance(world.friend.publicKey)).toBe(1_500_000_000n);
    clock += 24 * 3_600_000 + 1000;
    expect(await agent.say('owner', `/wallet send 0.6 SOL ${friend()}`)).toMatch(/confirmed|finalized/);
  });

  it('lets the model act alone only inside the autonomous limits, for owners only', async () => {
    const small = await propose('owner', '0.01', 'SOL', friend());
    expect(small.status).toMatch(/confirmed|finalized/);
    // Over the autonomous per-transfer limit (0.01): waits for approval.
    expect((await propose('owner', '0.02', 'SOL', friend())).status).toBe('pending_approval');
    // A stranger's conversation: even a small transfer waits for an owner.
    expect((await propose('mallory', '0.01', 'SOL', friend())).status).toBe('pending_approval');
    // The autonomous daily limit (0.03): the third small one waits.
    expect((await propose('owner', '0.01', 'SOL', friend())).status).toMatch(/confirmed|finalized/);
    expect((await propose('owner', '0.01', 'SOL', friend())).status).toMatch(/confirmed|finalized/);
    const over = await agent.say('owner', `please propose 0.01 SOL ${friend()}`);
    expect(over).toContain('over_autonomous_daily_cap');
    // A model proposal to a stranger is refused outright.
    expect(
      await agent.say('owner', `please propose 0.001 SOL ${world.stranger.publicKey.toBase58()}`),
    ).toContain('not_allowlisted');
  });
});
