import type { WalletSigner } from '../wallet-signer.js';
import type { Ed25519Signer } from './ed25519-signer.js';

/**
 * The signer the wallet service holds: the key behind it may be replaced by one loaded from
 * rotated secrets, but only by a key for the same address. Pending intents, approvals and the daily
 * caps all refer to that address, so a different wallet is a restart, never a swap.
 */
export class RenewableSigner implements WalletSigner {
  #current: Ed25519Signer;

  constructor(initial: Ed25519Signer) {
    this.#current = initial;
  }

  /** Base58 public key; fixed for the life of the wallet. */
  get address(): string {
    return this.#current.address;
  }

  /** Signs with `next` from now on; throws, keeping the current key, if `next` is another wallet. */
  replace(next: Ed25519Signer): void {
    if (next.address !== this.#current.address) {
      throw new Error(`the new key is for ${next.address}, not this wallet (${this.#current.address})`);
    }
    this.#current = next;
  }

  async publicKey(): Promise<string> {
    return this.#current.address;
  }

  signMessage(message: Uint8Array): Promise<Uint8Array> {
    return this.#current.signMessage(message);
  }

  // Like the signer it wraps: logging or serializing it shows which wallet it is, never the key.
  toJSON(): string {
    return this.toString();
  }

  toString(): string {
    return `RenewableSigner(${this.#current.address})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
