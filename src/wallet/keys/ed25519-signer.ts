import { createPrivateKey, createPublicKey, type KeyObject, sign, timingSafeEqual } from 'node:crypto';
import { PublicKey } from '@solana/web3.js';
import type { WalletSigner } from '../wallet-signer.js';
import { WalletKeyError } from './wallet-key-error.js';

/** PKCS#8 DER header for an Ed25519 private key (RFC 8410); the 32-byte seed follows it. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SPKI DER of an Ed25519 public key is a 12-byte header then the 32 raw bytes. */
const SPKI_ED25519_HEADER_LENGTH = 12;

export interface Ed25519SignerOptions {
  /** Where the key came from (a path or a variable name), for error messages. Default: `the secret key`. */
  source?: string;
}

/**
 * A wallet signer holding its key as a node:crypto `KeyObject`, which lives in OpenSSL's memory
 * rather than in a JS buffer that could be logged, serialized or left in the heap. Built from a
 * Solana secret key: 64 bytes (seed then public key, as `solana-keygen` writes it) or the 32-byte
 * seed alone. The caller keeps ownership of the bytes it passes and should zero them afterwards.
 */
export class Ed25519Signer implements WalletSigner {
  readonly #key: KeyObject;
  readonly #address: string;

  constructor(secretKey: Uint8Array, options: Ed25519SignerOptions = {}) {
    const source = options.source ?? 'the secret key';
    if (secretKey.length !== 32 && secretKey.length !== 64) {
      throw new WalletKeyError(
        'wallet_key_invalid',
        source,
        `a Solana secret key is 64 bytes (or its 32-byte seed), got ${secretKey.length}`,
        'use the keypair written by solana-keygen',
      );
    }
    const der = Buffer.concat([PKCS8_ED25519_PREFIX, secretKey.subarray(0, 32)]);
    try {
      this.#key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } finally {
      // OpenSSL has its own copy now; ours must not outlive this call.
      der.fill(0);
    }
    const derived = createPublicKey(this.#key)
      .export({ format: 'der', type: 'spki' })
      .subarray(SPKI_ED25519_HEADER_LENGTH);
    // A 64-byte key whose second half is not the seed's public key is corrupt or spliced, and would
    // sign for an address other than the one the operator funded.
    if (secretKey.length === 64 && !timingSafeEqual(derived, secretKey.subarray(32))) {
      throw new WalletKeyError(
        'wallet_key_invalid',
        source,
        'the public key in the secret key does not match its seed',
        'use an intact keypair written by solana-keygen',
      );
    }
    this.#address = new PublicKey(derived).toBase58();
  }

  /** Base58 public key, for callers that cannot await (logging, building the keystore). */
  get address(): string {
    return this.#address;
  }

  async publicKey(): Promise<string> {
    return this.#address;
  }

  async signMessage(message: Uint8Array): Promise<Uint8Array> {
    // Ed25519 hashes internally, so the algorithm argument must be null.
    return new Uint8Array(sign(null, message, this.#key));
  }

  // Logging or serializing the signer shows which wallet it is, never the key.
  toJSON(): string {
    return this.toString();
  }

  toString(): string {
    return `Ed25519Signer(${this.#address})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
