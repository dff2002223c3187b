import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Command } from '../core/commands/command.js';
import type { IdentityResolver } from '../core/identity/identity-store.js';
import type { TurnTools } from '../core/tools/turn-tools.js';
import type { JobDefinition } from '../jobs/job-scheduler.js';
import { keyRenewal, type RenewKeyResult } from './key-renewal.js';
import { keySourceOf, loadWalletSigner, type WalletKeySource } from './keys/key-source.js';
import { RenewableSigner } from './keys/renewable-signer.js';
import { ConnectionPool } from './rpc/connection-pool.js';
import type { SolanaRpc } from './rpc/solana-rpc.js';
import { LogWalletStore } from './store/log-wallet-store.js';
import { RedisWalletStore } from './store/redis-wallet-store.js';
import type { WalletStore } from './store/wallet-store.js';
import type { Requester } from './transfer-intent.js';
import { createWalletCommand } from './wallet-commands.js';
import { GENESIS_HASHES, PUBLIC_RPC_URLS, type WalletConfig, type WalletKeyConfig } from './wallet-config.js';
import { WalletOwners } from './wallet-owners.js';
import { WalletPolicy, WalletRefusal } from './wallet-policy.js';
import { WalletService } from './wallet-service.js';
import { createWalletTools } from './wallet-tools.js';

export interface WalletDeps {
  identity: IdentityResolver;
  logger: Logger;
  dataDir: string;
  redis?: { client: Redis; keyPrefix: string };
  /** Tells a person how their transfer ended, on the chat they last used. */
  notify?: (requester: Requester, id: string, text: string) => Promise<void>;
  /** Counts each transfer outcome reported (metrics). */
  onOutcome?: (status: string, intentId: string) => void;
  now?: () => number;
}

export interface Wallet {
  readonly service: WalletService;
  readonly store: WalletStore;
  readonly command: Command;
  readonly tools: TurnTools;
  /** Drives unfinished transfers on; once across the cluster. */
  readonly reconcileJob: JobDefinition;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Takes rotated key secrets (`wallet.key` of a freshly loaded config) without a restart. Only a
   * key for this wallet's address replaces the one in use; anything else keeps it (see
   * `RenewKeyResult`). Never logs or returns a secret.
   */
  renewKey(key: Readonly<WalletKeyConfig>): Promise<RenewKeyResult>;
}

export type { RenewKeyResult } from './key-renewal.js';

/**
 * Builds the wallet from its config. The key is loaded here, so a key file that is unsafe or
 * unreadable stops the agent from starting rather than leaving a wallet that half-works.
 */
export async function createWallet(config: WalletConfig, deps: WalletDeps): Promise<Wallet> {
  const signer = new RenewableSigner(await loadWalletSigner(walletKeySource(config)));
  const address = signer.address;
  const renewKey = keyRenewal({ key: config.key, signer, logger: deps.logger });
  const rpc: SolanaRpc = new ConnectionPool({
    urls:
      config.rpcUrls.length > 0
        ? config.rpcUrls
        : [PUBLIC_RPC_URLS[config.cluster as keyof typeof PUBLIC_RPC_URLS]],
    timeoutMs: config.rpcTimeoutMs,
    logger: deps.logger,
  });
  const store: WalletStore = deps.redis
    ? new RedisWalletStore({ redis: deps.redis.client, keyPrefix: deps.redis.keyPrefix })
    : new LogWalletStore({ dataDir: deps.dataDir, logger: deps.logger });
  const policy = new WalletPolicy(config, address);
  let verified: Promise<void> | undefined;
  // The cluster is proven before the first action and again after a failed proof; never assumed.
  const verify = () => {
    verified ??= verifyCluster(config, rpc, policy).catch((error: unknown) => {
      verified = undefined;
      throw error;
    });
    return verified;
  };
  const service = new WalletService({
    address,
    signer,
    rpc,
    store,
    policy,
    verify,
    approvalTtlMs: config.approvalTtlMs,
    confirmPollMs: config.confirmPollMs,
    confirmWaitMs: config.confirmWaitMs,
    logger: deps.logger,
    ...(deps.notify ? { notify: deps.notify } : {}),
    ...(deps.onOutcome ? { onOutcome: deps.onOutcome } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  const owners = new WalletOwners(config.owners, deps.identity);
  return {
    service,
    store,
    command: createWalletCommand({ wallet: service, owners, publicRead: config.publicRead }),
    tools: createWalletTools({ wallet: service, owners, publicRead: config.publicRead }),
    reconcileJob: {
      name: 'wallet-reconciliation',
      everyMs: config.reconcileEveryMs,
      run: async () => {
        const result = await service.reconcile();
        if (result.checked > 0) deps.logger.info(result, 'wallet reconciliation');
      },
    },
    async start() {
      await store.open();
      deps.logger.info({ address, cluster: config.cluster, store: store.backend }, 'wallet ready');
      // Start-up recovery: what a crash left unfinished is looked at now, not at the first job run.
      service
        .reconcile()
        .catch((error: unknown) =>
          deps.logger.warn(
            { err: (error as Error).message },
            'wallet: start-up reconciliation failed; the job retries',
          ),
        );
    },
    async stop() {
      await service.stop();
      await store.close();
    },
    renewKey,
  };
}

/** Where the configured key comes from (keypair file, keystore, or a secret). */
export function walletKeySource(config: Readonly<WalletConfig>): WalletKeySource {
  return keySourceOf(config.key);
}

/** The genesis hash of the configured cluster (a localnet's is configured). */
export function expectedGenesisHash(config: Readonly<WalletConfig>): string | undefined {
  return config.genesisHash ?? GENESIS_HASHES[config.cluster as keyof typeof GENESIS_HASHES];
}

/** The RPC must be the cluster the config names (mainnet only when its genesis hash says so), and tokens must have the decimals configured. */
async function verifyCluster(config: WalletConfig, rpc: SolanaRpc, policy: WalletPolicy): Promise<void> {
  const expected = expectedGenesisHash(config);
  const actual = await rpc.genesisHash().catch(() => {
    throw new WalletRefusal(
      'policy_unavailable',
      'the Solana RPC cannot be reached to prove which cluster it is',
    );
  });
  if (actual !== expected) {
    throw new WalletRefusal(
      'cluster_mismatch',
      `the RPC serves the cluster with genesis hash ${actual}, not ${config.cluster} (${expected}); check WALLET_RPC_URLS`,
    );
  }
  for (const token of policy.tokenList()) {
    if (!token.mint) continue;
    const decimals = await rpc.mintDecimals(token.mint).catch(() => {
      throw new WalletRefusal('policy_unavailable', `the mint of ${token.symbol} cannot be read`);
    });
    if (decimals !== token.decimals) {
      throw new WalletRefusal(
        'cluster_mismatch',
        `${token.symbol}'s mint has ${decimals} decimals on the chain, not ${token.decimals} as configured`,
      );
    }
  }
}
