import type { WalletKeyConfig } from '../wallet-config.js';
import { decodeBase58 } from './base58.js';
import { Ed25519Signer } from './ed25519-signer.js';
import { decryptKeystore, readKeystoreFile } from './encrypted-keystore.js';
import { readKeypairFile } from './keypair-file.js';
import { parseJsonQuietly, secretKeyFromJson } from './secret-key-bytes.js';
import { WalletKeyError } from './wallet-key-error.js';

/** Where the wallet's key comes from. */
export type WalletKeySource =
  /** A Solana CLI keypair file (`solana-keygen new`), mode 600. */
  | { kind: 'keypair-file'; path: string }
  /** An encrypted keystore (docs/wallet-keystore.md), mode 600, and its passphrase. */
  | { kind: 'keystore'; path: string; passphrase: string }
  /**
   * A secret store's value, handed over through an environment variable or a `*_FILE` secret:
   * the JSON array of a keypair file, or the base58 of the 64 bytes (as wallets export it).
   * `name` is the variable it came from (`WALLET_SECRET_KEY_FILE` when read from a file), for error
   * messages. Default: `WALLET_SECRET_KEY`.
   */
  | { kind: 'secret'; value: string; name?: string };

/** Where the `wallet.key` settings say the key is (keypair file, keystore, or a secret). */
export function keySourceOf(key: Readonly<WalletKeyConfig>): WalletKeySource {
  if (key.keypairFile) return { kind: 'keypair-file', path: key.keypairFile };
  if (key.keystoreFile)
    return { kind: 'keystore', path: key.keystoreFile, passphrase: key.keystorePassphrase ?? '' };
  return { kind: 'secret', value: key.secretKey ?? '' };
}

/** Loads the wallet's signer; failures are `WalletKeyError`s that name the source and the fix. */
export async function loadWalletSigner(source: WalletKeySource): Promise<Ed25519Signer> {
  switch (source.kind) {
    case 'keypair-file':
      return signerFrom(await readKeypairFile(source.path), source.path);
    case 'keystore':
      return decryptKeystore(await readKeystoreFile(source.path), source.passphrase, source.path);
    case 'secret': {
      const name = source.name ?? 'WALLET_SECRET_KEY';
      return signerFrom(secretKeyFromText(source.value, name), name);
    }
  }
}

/** Builds the signer and zeroes the bytes, which the signer no longer needs. */
function signerFrom(secretKey: Uint8Array, source: string): Ed25519Signer {
  try {
    return new Ed25519Signer(secretKey, { source });
  } finally {
    secretKey.fill(0);
  }
}

function secretKeyFromText(value: string, name: string): Uint8Array {
  const text = value.trim();
  const bytes = text.startsWith('[') ? secretKeyFromJson(parseJsonQuietly(text)) : decodeBase58(text);
  if (bytes === undefined || bytes.length !== 64) {
    bytes?.fill(0);
    throw new WalletKeyError(
      'wallet_key_invalid',
      name,
      text === ''
        ? 'the wallet secret is empty'
        : 'not a Solana secret key: expected a JSON array of 64 numbers or the base58 of the 64 bytes',
      `make ${name} hold the content of a solana-keygen keypair file, or the base58 of its 64 bytes`,
    );
  }
  return bytes;
}
