import { LAMPORTS_PER_SOL } from '@solana/web3.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startWalletAgent, type WalletAgent } from '../../support/wallet-agent.js';
import { OWNER_TOKEN, startWalletWorld, type WalletWorld } from '../../support/wallet-world.js';

let world: WalletWorld | undefined;
let running: WalletAgent | undefined;

afterEach(async () => {
  await running?.agent.stop();
  await world?.close();
  running = undefined;
  world = undefined;
});

describe('/wallet against a local Solana runtime', () => {
  it('shows the address and balances, and sends SOL and an SPL token that land on the ledger', async () => {
    world = await startWalletWorld();
    running = await startWalletAgent(world);
    const { say } = running;
    expect(await say('owner', '/wallet address')).toContain(world.wallet.publicKey.toBase58());
    const balance = await say('owner', '/wallet balance');
    expect(balance).toContain('10 SOL');
    expect(balance).toContain('1000 USDC');

    const friend = world.friend.publicKey;
    const sol = await say('owner', `/wallet send 0.25 SOL ${friend.toBase58()}`);
    expect(sol).toMatch(/confirmed|finalized/);
    expect(await world.solana.balance(friend)).toBe(BigInt(LAMPORTS_PER_SOL / 4));

    // The recipient has no token account yet: the transfer creates it.
    const usdc = await say('owner', `/wallet send 12.5 usdc ${friend.toBase58()}`);
    expect(usdc).toMatch(/confirmed|finalized/);
    expect(await world.solana.tokenBalance(world.usdc, friend)).toBe(12_500_000n);
    expect(await world.solana.tokenBalance(world.usdc, world.wallet.publicKey)).toBe(987_500_000n);
    // A second token transfer finds the account there (the idempotent create is a no-op).
    expect(await say('owner', `/wallet send 0.000001 USDC ${friend.toBase58()}`)).toMatch(
      /confirmed|finalized/,
    );
    expect(await world.solana.tokenBalance(world.usdc, friend)).toBe(12_500_001n);

    const history = await say('owner', '/wallet history');
    expect(history.split('\n')).toHaveLength(3);
    // Each reported outcome is counted for Prometheus.
    const metrics = await (
      await fetch(`${running.url}/metrics`, { headers: { authorization: `Bearer ${OWNER_TOKEN}` } })
    ).text();
    expect(metrics).toMatch(/^agent_wallet_transfers_total\{outcome="(confirmed|finalized)"\} [1-9]/m);
    // Each transfer landed once.
    expect(await world.solana.landed()).toHaveLength(3);
  });

  it('tells non-owners nothing unless the config allows reading', async () => {
    world = await startWalletWorld();
    running = await startWalletAgent(world);
    expect(await running.say('mallory', '/wallet balance')).toMatch(/^Refused \(not_owner\)/);
    expect(await running.say('mallory', '/wallet address')).toMatch(/^Refused \(not_owner\)/);
    await running.agent.stop();
    running = await startWalletAgent(world, { env: { WALLET_PUBLIC_READ: 'true' } });
    expect(await running.say('mallory', '/wallet balance')).toContain('10 SOL');
    expect(await running.say('mallory', `/wallet send 0.1 SOL ${world.friend.publicKey.toBase58()}`)).toMatch(
      /^Refused \(not_owner\)/,
    );
    expect(await world.solana.sent()).toBe(0);
  });

  it('fails over to the next RPC endpoint when the first is down', async () => {
    world = await startWalletWorld();
    // Nothing listens on port 1: every call to it fails and the next endpoint answers.
    running = await startWalletAgent(world, {
      env: { WALLET_RPC_URLS: `http://127.0.0.1:1,${world.solana.url}` },
    });
    const friend = world.friend.publicKey;
    expect(await running.say('owner', `/wallet send 0.1 SOL ${friend.toBase58()}`)).toMatch(
      /confirmed|finalized/,
    );
    expect(await world.solana.balance(friend)).toBe(100_000_000n);
  });

  it('refuses every action when the RPC serves another cluster than the one configured', async () => {
    world = await startWalletWorld();
    running = await startWalletAgent(world, {
      env: { WALLET_GENESIS_HASH: 'EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG' },
    });
    expect(await running.say('owner', '/wallet balance')).toMatch(/^Refused \(cluster_mismatch\)/);
    expect(await running.say('owner', `/wallet send 0.1 SOL ${world.friend.publicKey.toBase58()}`)).toMatch(
      /^Refused \(cluster_mismatch\)/,
    );
    expect(await world.solana.sent()).toBe(0);
  });
});
