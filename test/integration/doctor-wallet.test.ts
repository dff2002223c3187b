import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Keypair } from '@solana/web3.js';
import bs58 from 'bs58';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVNET_GENESIS_HASH, FAKE_GENESIS_HASH } from '../fakes/fake-solana-remote.js';
import { MAIN_JS } from '../support/agent-process.js';
import { freePort } from '../support/free-port.js';
import { startWalletWorld, type WalletWorld } from '../support/wallet-world.js';

/** `dist/main.js doctor` with the world's directory (and its agent.config.json) as the working directory. */
function doctor(cwd: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN_JS, 'doctor'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', LOCAL_LLM_PROBE: 'false', ...env },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stderr.on('data', (c: Buffer) => (output += c));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

/** The report's findings, after the resolved configuration. */
function checks(output: string): string {
  const at = output.indexOf('\nChecks:\n');
  expect(at).toBeGreaterThan(0);
  return output.slice(at);
}

function writeKeypair(path: string, keypair: Keypair, mode: number): void {
  writeFileSync(path, JSON.stringify([...keypair.secretKey]), { mode });
  chmodSync(path, mode);
}

describe('doctor: wallet', () => {
  let world: WalletWorld;
  const keys: Keypair[] = [];
  beforeAll(async () => {
    world = await startWalletWorld();
    keys.push(world.wallet);
  });
  afterAll(async () => {
    await world?.close();
  });

  /** No key's secret bytes, in any spelling, are in the output. */
  function expectNoKey(output: string): void {
    for (const key of keys) {
      expect(output).not.toContain(JSON.stringify([...key.secretKey]));
      expect(output).not.toContain([...key.secretKey.subarray(0, 8)].join(','));
      expect(output).not.toContain(bs58.encode(key.secretKey));
      expect(output).not.toContain(bs58.encode(key.secretKey.subarray(0, 32)));
    }
  }

  it('passes against the configured cluster: key, genesis hash, token mint and balance', async () => {
    // An RPC URL carrying a key in its path and query: only its origin is shown.
    const rpc = new URL('/rpc/doctor-rpc-path-secret?api-key=doctor-rpc-query-secret', world.solana.url).href;
    const { code, output } = await doctor(world.dataDir, { ...world.env, WALLET_RPC_URLS: rpc });
    const address = world.wallet.publicKey.toBase58();
    const origin = new URL(world.solana.url).origin;
    expect(output).toContain(
      `[ok  ] wallet key: keypair file ${world.keypairFile} loads; address ${address}\n`,
    );
    expect(output).toContain(`[ok  ] wallet rpc ${origin}: answers; genesis hash matches localnet\n`);
    expect(output).toContain(`[ok  ] wallet token USDC: mint ${world.usdc.toBase58()} has 6 decimals\n`);
    expect(output).toContain(`[ok  ] wallet balance: 10 SOL at ${address}\n`);
    expect(output).not.toContain('[FAIL]');
    // Only the checks: the resolved configuration above them prints wallet.rpcUrls in full.
    expect(checks(output)).not.toMatch(/doctor-rpc-(path|query)-secret/);
    expectNoKey(output);
    expect(code).toBe(0);
  });

  it('fails when the RPC serves another cluster than the configured one (genesis mismatch)', async () => {
    // A devnet wallet pointed at the fake: its genesis hash is not devnet's.
    const config = JSON.parse(readFileSync(join(world.dataDir, 'agent.config.json'), 'utf8'));
    config.wallet.cluster = 'devnet';
    delete config.wallet.genesisHash;
    const file = join(world.dataDir, 'devnet.config.json');
    writeFileSync(file, JSON.stringify(config));
    const { code, output } = await doctor(world.dataDir, { ...world.env, AGENT_CONFIG: file });
    const origin = new URL(world.solana.url).origin;
    expect(output).toContain(
      `[FAIL] wallet rpc ${origin}: the RPC serves the cluster with genesis hash ${FAKE_GENESIS_HASH}, not devnet (${DEVNET_GENESIS_HASH}); the wallet refuses to act on it\n` +
        '         fix: point WALLET_RPC_URLS at a devnet RPC, or set WALLET_CLUSTER to the cluster it serves',
    );
    // Nothing is read from a cluster that is not the configured one.
    expect(output).not.toMatch(/wallet (balance|token)/);
    expectNoKey(output);
    expect(code).toBe(1);
  });

  it('fails on a key file group or others may read, without printing the key', async () => {
    const path = join(world.dataDir, 'group-readable-keypair.json');
    writeKeypair(path, world.wallet, 0o640);
    const { code, output } = await doctor(world.dataDir, { ...world.env, WALLET_KEYPAIR_FILE: path });
    expect(output).toContain(
      `[FAIL] wallet key: the keypair file is readable or writable by group or others (mode 0640) (${path})\n` +
        `         fix: chmod 600 ${path}`,
    );
    expectNoKey(output);
    expect(code).toBe(1);
  });

  it('warns, without failing, when the wallet holds no SOL', async () => {
    const empty = Keypair.generate();
    keys.push(empty);
    const path = join(world.dataDir, 'empty-keypair.json');
    writeKeypair(path, empty, 0o600);
    const { code, output } = await doctor(world.dataDir, { ...world.env, WALLET_KEYPAIR_FILE: path });
    const address = empty.publicKey.toBase58();
    expect(output).toContain(
      `[warn] wallet balance: ${address} holds 0 SOL: it cannot pay transaction fees\n` +
        `         fix: fund it: send SOL to ${address}`,
    );
    expectNoKey(output);
    expect(code).toBe(0);
  });

  it('fails with the unreachable RPC named', async () => {
    const dead = await freePort();
    const { code, output } = await doctor(world.dataDir, {
      ...world.env,
      WALLET_RPC_URLS: `http://127.0.0.1:${dead}/?api-key=doctor-rpc-query-secret`,
    });
    expect(output).toMatch(
      new RegExp(
        `\\[FAIL\\] wallet rpc http://127\\.0\\.0\\.1:${dead}: cannot reach the Solana RPC at http://127\\.0\\.0\\.1:${dead}( \\([^)]+\\))?\\n\\s+fix: .*WALLET_RPC_URLS`,
      ),
    );
    expect(checks(output)).not.toContain('doctor-rpc-query-secret');
    expect(code).toBe(1);
  });
});
