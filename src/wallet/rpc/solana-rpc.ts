/**
 * The seam between the wallet and a Solana cluster. The wallet only ever needs these calls; the
 * implementation beside this file makes them with @solana/web3.js's `Connection` over several
 * endpoints, and the tests run that same implementation against a local runtime.
 */
export interface BlockhashInfo {
  blockhash: string;
  lastValidBlockHeight: number;
}

export interface SignatureState {
  slot: number;
  /** Null when the transaction succeeded; otherwise the runtime's error, as JSON. */
  err: unknown;
  confirmationStatus: 'processed' | 'confirmed' | 'finalized' | undefined;
}

export interface SolanaRpc {
  genesisHash(): Promise<string>;
  /** Lamports. */
  balance(address: string): Promise<bigint>;
  /** Base units in the owner's associated token account; zero when it has none. */
  tokenBalance(owner: string, mint: string): Promise<bigint>;
  mintDecimals(mint: string): Promise<number>;
  latestBlockhash(): Promise<BlockhashInfo>;
  blockHeight(): Promise<number>;
  /**
   * Broadcasts signed bytes. Sending the same bytes again is harmless, and resolves too when they
   * have already landed.
   */
  send(transaction: Uint8Array): Promise<void>;
  /** Null for a signature the cluster does not know (yet, or ever). Searches history. */
  signatureStates(signatures: string[]): Promise<(SignatureState | null)[]>;
}

/** The cluster refused the transaction itself (not the endpoint failing): trying elsewhere will not help. */
export class TransactionRejected extends Error {
  constructor(
    message: string,
    readonly reason: 'blockhash_expired' | 'invalid',
  ) {
    super(message);
    this.name = 'TransactionRejected';
  }
}
