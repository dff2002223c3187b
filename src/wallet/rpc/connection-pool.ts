import { getAssociatedTokenAddressSync, getMint, unpackAccount } from '@solana/spl-token';
import { type Commitment, Connection, PublicKey, SendTransactionError } from '@solana/web3.js';
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
} from 'cockatiel';
import type { Logger } from 'pino';
import {
  type BlockhashInfo,
  type SignatureState,
  type SolanaRpc,
  TransactionRejected,
} from './solana-rpc.js';

export interface ConnectionPoolOptions {
  urls: readonly string[];
  timeoutMs: number;
  logger: Logger;
  commitment?: Commitment;
  /** Consecutive failures that take an endpoint out of rotation, and how long it rests. */
  failuresToOpen?: number;
  restMs?: number;
}

interface Endpoint {
  url: string;
  connection: Connection;
  breaker: CircuitBreakerPolicy;
}

/**
 * `SolanaRpc` over several endpoints with @solana/web3.js. Each call goes to the first endpoint
 * whose circuit is closed and moves on when that endpoint fails; a cluster's verdict on a
 * transaction (a bad signature, an expired blockhash) is final and is not retried elsewhere.
 */
export class ConnectionPool implements SolanaRpc {
  private readonly endpoints: Endpoint[];

  constructor(private readonly options: ConnectionPoolOptions) {
    if (options.urls.length === 0) throw new Error('the wallet needs at least one RPC URL');
    this.endpoints = options.urls.map((url) => ({
      url,
      connection: new Connection(url, {
        commitment: options.commitment ?? 'confirmed',
        // Rate limits fail over to the next endpoint instead of sleeping in the SDK.
        disableRetryOnRateLimit: true,
        fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(options.timeoutMs) }),
      }),
      breaker: circuitBreaker(
        handleWhen((error) => !(error instanceof TransactionRejected)),
        {
          halfOpenAfter: options.restMs ?? 10_000,
          breaker: new ConsecutiveBreaker(options.failuresToOpen ?? 3),
        },
      ),
    }));
  }

  genesisHash(): Promise<string> {
    return this.call('getGenesisHash', (c) => c.getGenesisHash());
  }

  async balance(address: string): Promise<bigint> {
    return BigInt(await this.call('getBalance', (c) => c.getBalance(new PublicKey(address))));
  }

  tokenBalance(owner: string, mint: string): Promise<bigint> {
    const account = getAssociatedTokenAddressSync(new PublicKey(mint), new PublicKey(owner), true);
    return this.call('getAccountInfo', async (c) => {
      const info = await c.getAccountInfo(account);
      return info ? unpackAccount(account, info).amount : 0n;
    });
  }

  mintDecimals(mint: string): Promise<number> {
    return this.call('getMint', async (c) => (await getMint(c, new PublicKey(mint))).decimals);
  }

  latestBlockhash(): Promise<BlockhashInfo> {
    return this.call('getLatestBlockhash', (c) => c.getLatestBlockhash());
  }

  blockHeight(): Promise<number> {
    return this.call('getBlockHeight', (c) => c.getBlockHeight());
  }

  send(transaction: Uint8Array): Promise<void> {
    return this.call('sendTransaction', async (c) => {
      try {
        // Retries are ours (the same bytes, until the blockhash expires), not the node's.
        await c.sendRawTransaction(transaction, { maxRetries: 0 });
      } catch (error) {
        // A resend of bytes that already landed is what we wanted: it is on the chain.
        if (/AlreadyProcessed|already been processed/i.test(describe(error))) return;
        throw asRejection(error) ?? error;
      }
    });
  }

  async signatureStates(signatures: string[]): Promise<(SignatureState | null)[]> {
    const result = await this.call('getSignatureStatuses', (c) =>
      c.getSignatureStatuses(signatures, { searchTransactionHistory: true }),
    );
    return result.value.map((s) =>
      s ? { slot: s.slot, err: s.err, confirmationStatus: s.confirmationStatus } : null,
    );
  }

  private async call<T>(method: string, run: (connection: Connection) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (const endpoint of this.endpoints) {
      try {
        return await endpoint.breaker.execute(() => run(endpoint.connection));
      } catch (error) {
        if (error instanceof TransactionRejected) throw error;
        lastError = error;
        if (!(error instanceof BrokenCircuitError)) {
          this.options.logger.warn(
            { rpc: endpoint.url, method, err: (error as Error).message },
            'solana rpc failed; trying the next endpoint',
          );
        }
      }
    }
    throw new Error(
      `every Solana RPC endpoint failed for ${method}: ${(lastError as Error)?.message ?? 'unknown'}`,
    );
  }
}

/** The cluster's own refusals, as opposed to an endpoint that is down. */
function asRejection(error: unknown): TransactionRejected | undefined {
  if (!(error instanceof SendTransactionError)) return undefined;
  const text = describe(error);
  if (/BlockhashNotFound|Blockhash not found/i.test(text)) {
    return new TransactionRejected("the transaction's blockhash has expired", 'blockhash_expired');
  }
  // Other RPC errors (an unhealthy node) are the endpoint's, and fail over.
  if (/simulation failed/i.test(text)) {
    return new TransactionRejected(error.message.slice(0, 300), 'invalid');
  }
  return undefined;
}

function describe(error: unknown): string {
  if (error instanceof SendTransactionError)
    return `${error.message} ${JSON.stringify(error.transactionError ?? '')}`;
  return (error as Error)?.message ?? String(error);
}
