import { pino } from 'pino';
import { formatAmount } from '../../wallet/amount.js';
import { expectedGenesisHash, walletKeySource } from '../../wallet/create-wallet.js';
import { loadWalletSigner } from '../../wallet/keys/key-source.js';
import { isWalletKeyError } from '../../wallet/keys/wallet-key-error.js';
import { ConnectionPool } from '../../wallet/rpc/connection-pool.js';
import {
  GENESIS_HASHES,
  PUBLIC_RPC_URLS,
  SOL_DECIMALS,
  type WalletConfig,
} from '../../wallet/wallet-config.js';
import type { Finding } from '../doctor.js';
import { networkCode, safeOrigin, scrub } from './safe-url.js';

/**
 * The wallet, when enabled: its key loads from a private file (the same loader and permission
 * check the agent's start uses; the key itself is never shown), every RPC endpoint answers with the
 * genesis hash of the configured cluster (the proof the wallet demands before acting), each
 * configured token's mint has the configured decimals, and the wallet holds SOL for fees.
 */
export async function checkWallet(config: Readonly<WalletConfig>): Promise<Finding[]> {
  if (!config.enabled) return [];
  const findings: Finding[] = [];
  const secrets = [config.key.secretKey, config.key.keystorePassphrase];
  let address: string | undefined;
  try {
    const signer = await loadWalletSigner(walletKeySource(config));
    address = signer.address;
    findings.push({
      check: 'wallet key',
      ok: true,
      severity: 'info',
      detail: `${keySourceName(config)} loads; address ${address}`,
    });
  } catch (error) {
    if (isWalletKeyError(error)) {
      const suffix = `; fix: ${error.fix}`;
      const detail = error.message.endsWith(suffix) ? error.message.slice(0, -suffix.length) : error.message;
      findings.push({
        check: 'wallet key',
        ok: false,
        severity: 'error',
        detail: scrub(detail, secrets),
        fix: scrub(error.fix, secrets),
      });
    } else {
      findings.push({
        check: 'wallet key',
        ok: false,
        severity: 'error',
        detail: `${keySourceName(config)} does not load: ${scrub((error as Error).message ?? String(error), secrets).slice(0, 200)}`,
        fix: 'set one of WALLET_KEYPAIR_FILE, WALLET_KEYSTORE_FILE (with WALLET_KEYSTORE_PASSPHRASE) or WALLET_SECRET_KEY',
      });
    }
  }

  const urls =
    config.rpcUrls.length > 0
      ? config.rpcUrls
      : [PUBLIC_RPC_URLS[config.cluster as keyof typeof PUBLIC_RPC_URLS]];
  const expected = expectedGenesisHash(config);
  const logger = pino({ level: 'silent' });
  // One pool per endpoint, so each is checked on its own rather than failed over.
  const endpoints = urls.map((url) => ({
    url,
    rpc: new ConnectionPool({ urls: [url], timeoutMs: config.rpcTimeoutMs, logger, failuresToOpen: 100 }),
  }));
  const answers = await Promise.all(
    endpoints.map(async ({ url, rpc }) => {
      try {
        return { url, rpc, genesis: await rpc.genesisHash() };
      } catch (error) {
        return { url, rpc, error };
      }
    }),
  );
  const reachable = answers.filter((a) => a.genesis !== undefined);
  for (const answer of answers) {
    const check = `wallet rpc ${safeOrigin(answer.url)}`;
    if (answer.genesis === undefined) {
      const reason = networkCode(answer.error) ?? rpcReason(answer.error);
      findings.push({
        check,
        ok: false,
        // The wallet fails over between endpoints: one down is a warning while another answers.
        severity: reachable.length > 0 ? 'warning' : 'error',
        detail: `cannot reach the Solana RPC at ${safeOrigin(answer.url)}${reason ? ` (${reason})` : ''}`,
        fix: 'check the RPC endpoint and the network path, or WALLET_RPC_URLS',
      });
    } else if (answer.genesis !== expected) {
      const known = Object.entries(GENESIS_HASHES).find(([, hash]) => hash === answer.genesis)?.[0];
      findings.push({
        check,
        ok: false,
        severity: 'error',
        detail: `the RPC serves the cluster with genesis hash ${answer.genesis}${known ? ` (${known})` : ''}, not ${config.cluster} (${expected}); the wallet refuses to act on it`,
        fix:
          config.cluster === 'localnet'
            ? 'point WALLET_RPC_URLS at the intended cluster, or set WALLET_GENESIS_HASH to the hash it serves'
            : `point WALLET_RPC_URLS at a ${config.cluster} RPC, or set WALLET_CLUSTER to the cluster it serves`,
      });
    } else {
      findings.push({
        check,
        ok: true,
        severity: 'info',
        detail: `answers; genesis hash matches ${config.cluster}`,
      });
    }
  }

  // Tokens and balance from an endpoint that proved the right cluster.
  const good = reachable.find((a) => a.genesis === expected);
  if (good === undefined) return findings;
  for (const token of config.tokens) {
    try {
      const decimals = await good.rpc.mintDecimals(token.mint);
      findings.push(
        decimals === token.decimals
          ? {
              check: `wallet token ${token.symbol}`,
              ok: true,
              severity: 'info',
              detail: `mint ${token.mint} has ${decimals} decimals`,
            }
          : {
              check: `wallet token ${token.symbol}`,
              ok: false,
              severity: 'error',
              detail: `mint ${token.mint} has ${decimals} decimals on the chain, not ${token.decimals} as configured; the wallet refuses to act`,
              fix: `set wallet.tokens[${token.symbol}].decimals to ${decimals}, or correct the mint address`,
            },
      );
    } catch {
      findings.push({
        check: `wallet token ${token.symbol}`,
        ok: false,
        severity: 'error',
        detail: `mint ${token.mint} cannot be read on ${config.cluster}; the wallet refuses to act`,
        fix: `check ${token.symbol}'s mint address in wallet.tokens is a mint on ${config.cluster}`,
      });
    }
  }
  if (address === undefined) return findings;
  try {
    const lamports = await good.rpc.balance(address);
    findings.push(
      lamports > 0n
        ? {
            check: 'wallet balance',
            ok: true,
            severity: 'info',
            detail: `${formatAmount(lamports, SOL_DECIMALS)} SOL at ${address}`,
          }
        : {
            check: 'wallet balance',
            ok: false,
            severity: 'warning',
            detail: `${address} holds 0 SOL: it cannot pay transaction fees`,
            fix: `fund it: send SOL to ${address}${config.cluster === 'devnet' || config.cluster === 'testnet' ? ` (solana airdrop 1 ${address} --url ${config.cluster})` : ''}`,
          },
    );
  } catch (error) {
    const code = networkCode(error);
    findings.push({
      check: 'wallet balance',
      ok: false,
      severity: 'warning',
      detail: `the balance of ${address} cannot be read${code ? ` (${code})` : ''}`,
      fix: 'check the RPC endpoint, or try again',
    });
  }
  return findings;
}

/** Why the pool's call failed, without its prefix and with every URL cut to its origin. */
function rpcReason(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : undefined;
  if (!message) return undefined;
  const text = message
    .replace(/^every Solana RPC endpoint failed for \w+: /, '')
    .replace(/\bhttps?:\/\/[^\s"'<>]+/g, (url) => safeOrigin(url));
  return text.slice(0, 160);
}

function keySourceName(config: Readonly<WalletConfig>): string {
  const { key } = config;
  if (key.keypairFile) return `keypair file ${key.keypairFile}`;
  if (key.keystoreFile) return `keystore ${key.keystoreFile}`;
  return 'WALLET_SECRET_KEY';
}
