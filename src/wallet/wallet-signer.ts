/**
 * The only seam through which anything in the agent can sign. Implementations hold the key
 * (keypair file, encrypted keystore or secret store) and never expose it: callers get a public
 * key and signatures over bytes that the wallet policy has already approved. The LLM never
 * reaches this interface; it may only propose transfers that a deterministic policy judges.
 */
export interface WalletSigner {
  /** Base58 public key of the wallet. */
  publicKey(): Promise<string>;
  /** Signs a serialized transaction message the policy approved; returns the 64-byte signature. */
  signMessage(message: Uint8Array): Promise<Uint8Array>;
}
