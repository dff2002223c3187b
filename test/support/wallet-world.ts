import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair, LAMPORTS_PER_SOL, type PublicKey } from '@solana/web3.js';
import { FAKE_GENESIS_HASH, type SolanaProcess, startSolanaProcess } from '../fakes/fake-solana-remote.js';

export const OWNER_TOKEN = 'owner-token-0123456789abcdef';

export interface WalletWorld {
  /** The runtime, in a process of its own (see test/fakes/fake-solana-remote.ts). */
  solana: SolanaProcess;
  wallet: Keypair;
  usdc: PublicKey;
  /** On the allowlist. */
  friend: Keypair;
  friend2: Keypair;
  /** Not on the allowlist. */
  stranger: Keypair;
  dataDir: string;
  keypairFile: string;
  /** Environment for `loadConfig`, with an `agent.config.json` in `dataDir` holding tokens and limits. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface WalletWorldOptions {
  limits?: Record<string, Record<string, string>>;
  /** Extra wallet config (merged over the defaults below). */
  wallet?: Record<string, unknown>;
  slotMs?: number;
  dataDir?: string;
  /** Other top-level config (`channels`, `context`, `memory`…), written beside `wallet`. */
  extraConfig?: Record<string, unknown>;
}

/**
 * A local Solana runtime behind JSON-RPC, a funded wallet with a USDC-like token (6 decimals),
 * two allowlisted recipients and one stranger, and the config that points an agent at them. The
 * HTTP conversation "owner" is the wallet's owner; every other conversation is not.
 */
export async function startWalletWorld(options: WalletWorldOptions = {}): Promise<WalletWorld> {
  const solana = await startSolanaProcess({ slotMs: options.slotMs ?? 20 });
  const wallet = Keypair.generate();
  const friend = Keypair.generate();
  const friend2 = Keypair.generate();
  const stranger = Keypair.generate();
  let usdc: PublicKey;
  try {
    await solana.fund(wallet.publicKey, 10n * BigInt(LAMPORTS_PER_SOL));
    usdc = await solana.createMint(6);
    await solana.mintTo(usdc, wallet.publicKey, 1_000_000_000n);
  } catch (error) {
    await solana.close();
    throw error;
  }
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'wallet-world-'));
  const keypairFile = join(dataDir, 'wallet-keypair.json');
  writeFileSync(keypairFile, JSON.stringify([...wallet.secretKey]), { mode: 0o600 });
  chmodSync(keypairFile, 0o600);
  const config = {
    ...options.extraConfig,
    wallet: {
      enabled: true,
      cluster: 'localnet',
      rpcUrls: [solana.url],
      genesisHash: FAKE_GENESIS_HASH,
      key: { keypairFile },
      owners: ['http:owner'],
      allowlist: [friend.publicKey.toBase58(), friend2.publicKey.toBase58()],
      tokens: [{ symbol: 'USDC', mint: usdc.toBase58(), decimals: 6 }],
      limits: options.limits ?? {
        SOL: { perTransaction: '1', perDay: '2', autonomousPerTransaction: '0.01', autonomousPerDay: '0.03' },
        USDC: { perTransaction: '100', perDay: '250', autonomousPerTransaction: '5', autonomousPerDay: '10' },
      },
      confirmPollMs: 50,
      confirmWaitMs: 10_000,
      reconcileEveryMs: 1000,
      ...options.wallet,
    },
  };
  writeFileSync(join(dataDir, 'agent.config.json'), JSON.stringify(config, null, 2));
  return {
    solana,
    wallet,
    usdc,
    friend,
    friend2,
    stranger,
    dataDir,
    keypairFile,
    env: { DATA_DIR: dataDir, HTTP_AUTH_TOKENS: OWNER_TOKEN },
    close: () => solana.close(),
  };
}
