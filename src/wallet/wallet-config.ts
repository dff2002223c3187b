import { PublicKey } from '@solana/web3.js';
import { z } from 'zod';
import { parseAmount } from './amount.js';

/** Genesis hashes of the public clusters: mainnet is only used when the RPC proves it is mainnet. */
export const GENESIS_HASHES = {
  'mainnet-beta': '5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d',
  devnet: 'EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG',
  testnet: '4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY',
} as const;

export const PUBLIC_RPC_URLS = {
  'mainnet-beta': 'https://api.mainnet-beta.solana.com',
  devnet: 'https://api.devnet.solana.com',
  testnet: 'https://api.testnet.solana.com',
} as const;

export const SOL = 'SOL';
export const SOL_DECIMALS = 9;

const address = z.string().refine(isAddress, 'must be a base58 Solana address');

/** A limit in whole tokens as a decimal string ("0.5"), so no float ever holds an amount. */
const decimalLimit = z
  .string({ error: 'must be a decimal string such as "0.5" (quoted, not a number)' })
  .regex(/^\d+(\.\d+)?$/, 'must be a decimal string such as "0.5" (quoted, not a number)');

const limitsSchema = z
  .object({
    /** The most one transfer may move, approved or not. */
    perTransaction: decimalLimit,
    /** The most that may leave in any rolling 24 hours. */
    perDay: decimalLimit,
    /** The most one transfer the model proposes may move without an owner's approval. Default none. */
    autonomousPerTransaction: decimalLimit.default('0'),
    /** The most that autonomous transfers may move in any rolling 24 hours. Default none. */
    autonomousPerDay: decimalLimit.default('0'),
  })
  .strict();

const tokenSchema = z
  .object({
    symbol: z.string().regex(/^[A-Z0-9]{2,10}$/, 'must be 2-10 upper-case letters or digits'),
    mint: address,
    /** Checked against the mint account on the chain when the wallet starts; a mismatch refuses to start. */
    decimals: z.number().int().min(0).max(18),
  })
  .strict();

const keySchema = z
  .object({
    /** A Solana CLI keypair file (a JSON array of 64 numbers), mode 600. */
    keypairFile: z.string().min(1).optional(),
    /** An encrypted keystore file (docs/wallet-keystore.md), mode 600. */
    keystoreFile: z.string().min(1).optional(),
    /** The keystore's passphrase (WALLET_KEYSTORE_PASSPHRASE or its _FILE). */
    keystorePassphrase: z.string().min(1).optional(),
    /** The secret key itself, from a secret store (WALLET_SECRET_KEY or its _FILE): JSON array of 64 numbers. */
    secretKey: z.string().min(1).optional(),
  })
  .strict();

export const walletSchema = z
  .object({
    enabled: z.boolean().default(false),
    cluster: z.enum(['devnet', 'testnet', 'mainnet-beta', 'localnet']).default('devnet'),
    /** Must be true for `cluster: "mainnet-beta"`: real money needs a deliberate setting. */
    allowMainnet: z.boolean().default(false),
    /** RPC endpoints in order of preference; the wallet fails over between them. Default: the cluster's public one. */
    rpcUrls: z
      .array(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }))
      .default([]),
    /** For `localnet` (no known genesis hash): the genesis hash the RPC must report. */
    genesisHash: z.string().min(32).max(64).optional(),
    key: keySchema.default({}),
    /** Accounts that may send and approve, as "channel:userId" (telegram:123, discord:456, slack:U01, http:alice). */
    owners: z
      .array(z.string().regex(/^(telegram|discord|slack|http):\S+$/, 'must be "channel:userId"'))
      .default([]),
    /** Whether people who are not owners may see the address and balance. */
    publicRead: z.boolean().default(false),
    /** The only recipients any transfer may go to, owner's or autonomous. */
    allowlist: z.array(address).default([]),
    tokens: z.array(tokenSchema).default([]),
    /** Per token symbol ("SOL", "USDC"): the caps. A token without limits cannot be sent. */
    limits: z.record(z.string(), limitsSchema).default({}),
    autonomy: z
      .object({
        /** Autonomous transfers only while an owner is the one talking (default), or in any conversation. */
        ownersOnly: z.boolean().default(true),
      })
      .strict()
      .default({ ownersOnly: true }),
    /** How long a pending approval stays approvable. */
    approvalTtlMs: z
      .number()
      .int()
      .min(10_000)
      .max(7 * 86_400_000)
      .default(15 * 60_000),
    /** How often a sent transfer's status is polled while it is being confirmed. */
    confirmPollMs: z.number().int().min(50).max(10_000).default(500),
    /** How long `/wallet send` waits for `confirmed` before answering "sent, confirming". */
    confirmWaitMs: z.number().int().min(0).max(120_000).default(30_000),
    /** Per RPC request. */
    rpcTimeoutMs: z.number().int().min(100).max(60_000).default(8000),
    /** How often the reconciliation job looks at unfinished transfers. */
    reconcileEveryMs: z.number().int().min(1000).default(15_000),
  })
  .strict()
  .superRefine((wallet, ctx) => {
    if (!wallet.enabled) return;
    const issue = (path: (string | number)[], message: string, fix: string) =>
      ctx.addIssue({ code: 'custom', path, message, params: { fix } });
    if (wallet.cluster === 'mainnet-beta' && !wallet.allowMainnet) {
      issue(
        ['cluster'],
        'is "mainnet-beta" but wallet.allowMainnet is not true',
        'set WALLET_ALLOW_MAINNET=true to move real funds, or use devnet',
      );
    }
    if (wallet.cluster === 'localnet' && (wallet.rpcUrls.length === 0 || wallet.genesisHash === undefined)) {
      issue(
        ['genesisHash'],
        'and wallet.rpcUrls are required for the localnet cluster',
        'set WALLET_RPC_URLS and WALLET_GENESIS_HASH',
      );
    }
    const sources = (['keypairFile', 'keystoreFile', 'secretKey'] as const).filter(
      (k) => wallet.key[k] !== undefined,
    );
    if (sources.length !== 1) {
      issue(
        ['key'],
        sources.length === 0
          ? 'is missing'
          : `has ${sources.length} sources (${sources.join(', ')}); use one`,
        'set one of WALLET_KEYPAIR_FILE, WALLET_KEYSTORE_FILE (with WALLET_KEYSTORE_PASSPHRASE) or WALLET_SECRET_KEY',
      );
    }
    if (wallet.key.keystoreFile !== undefined && wallet.key.keystorePassphrase === undefined) {
      issue(
        ['key', 'keystorePassphrase'],
        'is missing for the keystore file',
        'set WALLET_KEYSTORE_PASSPHRASE or WALLET_KEYSTORE_PASSPHRASE_FILE',
      );
    }
    const symbols = new Set([SOL, ...wallet.tokens.map((t) => t.symbol)]);
    for (const [symbol, limits] of Object.entries(wallet.limits)) {
      if (!symbols.has(symbol)) {
        issue(
          ['limits', symbol],
          'names a token that is not configured',
          'add it to wallet.tokens or remove its limits',
        );
        continue;
      }
      const decimals =
        symbol === SOL ? SOL_DECIMALS : (wallet.tokens.find((t) => t.symbol === symbol)?.decimals ?? 0);
      for (const [key, value] of Object.entries(limits)) {
        const parsed = parseAmount(value, decimals);
        if (!parsed.ok)
          issue(['limits', symbol, key], parsed.message, `write it with at most ${decimals} decimals`);
      }
    }
  });

export type WalletConfig = z.infer<typeof walletSchema>;
export type TokenConfig = z.infer<typeof tokenSchema>;
/** `wallet.key`: where the wallet's key comes from (one source), secrets included. */
export type WalletKeyConfig = z.infer<typeof keySchema>;

export function isAddress(text: string): boolean {
  try {
    return new PublicKey(text).toBase58() === text;
  } catch {
    return false;
  }
}
