import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProcess, startAgentProcess } from '../support/agent-process.js';
import { postMessage } from '../support/test-agent.js';
import { OWNER_TOKEN, startWalletWorld, type WalletWorld } from '../support/wallet-world.js';

/**
 * The wallet's process is killed (SIGKILL) at the two moments that matter: after it persisted a
 * signed transfer but before the cluster applied it, and after the cluster applied it but before
 * the wallet heard back. Each restart must finish every transfer exactly once: the ledger counts
 * what landed, and nothing may land twice or be lost.
 */
const ROUNDS_PER_POINT = 6;
const AMOUNT = 1_000_000n; // 0.001 SOL

let world: WalletWorld;
let agent: AgentProcess | undefined;

async function startAgent(): Promise<AgentProcess> {
  agent = await startAgentProcess({
    AGENT_CONFIG: join(world.dataDir, 'agent.config.json'),
    DATA_DIR: world.dataDir,
    HTTP_AUTH_TOKENS: OWNER_TOKEN,
    LOG_LEVEL: 'warn',
  });
  return agent;
}

async function send(url: string, eventId: string): Promise<unknown> {
  return postMessage(
    url,
    'owner',
    { text: `/wallet send 0.001 SOL ${world.friend.publicKey.toBase58()}`, eventId },
    { authorization: `Bearer ${OWNER_TOKEN}` },
  ).catch((error: unknown) => error); // The process dies under the request.
}

async function history(url: string): Promise<string> {
  const reply = await postMessage(
    url,
    'owner',
    { text: '/wallet history', eventId: `h-${Date.now()}` },
    {
      authorization: `Bearer ${OWNER_TOKEN}`,
    },
  );
  return reply.body.reply.text as string;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  world = await startWalletWorld({
    // 150 blocks of 200 ms: the signed bytes stay valid for 30 s, longer than a restart under a
    // loaded suite takes, so only the expiry case below (which jumps the chain) sees them expire.
    slotMs: 200,
    limits: { SOL: { perTransaction: '1', perDay: '5' } },
    wallet: { reconcileEveryMs: 1000, confirmPollMs: 50 },
  });
});

afterAll(async () => {
  agent?.child.kill('SIGKILL');
  await world?.close();
});

describe('wallet crash safety', () => {
  it('finishes every transfer exactly once across kills between persist and broadcast, and between broadcast and confirm', async () => {
    let expected = 0n;
    for (const phase of ['before', 'after'] as const) {
      for (let round = 0; round < ROUNDS_PER_POINT; round += 1) {
        const running = await startAgent();
        const killed = new Promise<void>((resolve) => {
          world.solana.onSend((event) => {
            if (event.phase !== phase) return;
            world.solana.onSend(undefined);
            running.child.kill('SIGKILL');
            resolve();
          });
        });
        // 'before': the cluster never sees this attempt; 'after': it lands but the answer is lost.
        await world.solana.sendMode(
          phase === 'before' ? { before: 'drop', times: 1 } : { after: 'drop', times: 1 },
        );
        void send(running.url, `${phase}-${round}`);
        await killed;
        await running.exited;
        await world.solana.sendMode({});
        expected += AMOUNT;
        // The restarted wallet finds the persisted bytes and sends the same ones again (or sees them landed).
        const restarted = await startAgent();
        await until(
          'the transfer to land',
          async () => (await world.solana.balance(world.friend.publicKey)) === expected,
        );
        await until(
          'the intent to be confirmed',
          async () => !/waiting|being/.test(await history(restarted.url)),
        );
        restarted.child.kill('SIGKILL');
        await restarted.exited;
      }
    }
    // Every intent landed once: one landed signature per transfer, and the balance moved by exactly that.
    expect(await world.solana.landed()).toHaveLength(2 * ROUNDS_PER_POINT);
    expect(await world.solana.balance(world.friend.publicKey)).toBe(expected);
  }, 240_000);

  it('marks a transfer failed only after its blockhash expired unlanded, and only then allows a new attempt', async () => {
    const before = await world.solana.balance(world.friend.publicKey);
    const landedBefore = (await world.solana.landed()).length;
    const running = await startAgent();
    const killed = new Promise<void>((resolve) => {
      world.solana.onSend((event) => {
        if (event.phase !== 'before') return;
        world.solana.onSend(undefined);
        running.child.kill('SIGKILL');
        resolve();
      });
    });
    await world.solana.sendMode({ before: 'drop', times: 1 });
    void send(running.url, 'expiring');
    await killed;
    await running.exited;
    await world.solana.sendMode({});
    // The wallet is away past the transfer's last valid block height: those bytes can never land.
    await world.solana.advance(200);
    const restarted = await startAgent();
    await until('the transfer to be marked failed', async () =>
      /failed: expired/.test(await history(restarted.url)),
    );
    expect(await world.solana.balance(world.friend.publicKey)).toBe(before);
    // A new attempt is a new intent with new bytes, and it lands once.
    await send(restarted.url, 'retry');
    await until(
      'the new transfer to land',
      async () => (await world.solana.balance(world.friend.publicKey)) === before + AMOUNT,
    );
    expect(await world.solana.landed()).toHaveLength(landedBefore + 1);
    restarted.child.kill('SIGKILL');
  }, 60_000);
});
