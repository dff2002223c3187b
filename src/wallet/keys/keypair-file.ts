import { readPrivateFile } from './private-file.js';
import { parseJsonQuietly, secretKeyFromJson } from './secret-key-bytes.js';
import { WalletKeyError } from './wallet-key-error.js';

/**
 * Reads a Solana CLI keypair file (a JSON array of 64 numbers, as `solana-keygen new` writes it)
 * and returns its 64 bytes; the caller zeroes them once it has built a signer. The file must be
 * private to its owner (mode 600 or stricter).
 */
export async function readKeypairFile(path: string): Promise<Uint8Array> {
  const raw = await readPrivateFile(path, 'keypair file');
  try {
    return keypairFromJson(parseJsonQuietly(raw.toString('utf8')), path);
  } finally {
    raw.fill(0);
  }
}

/** The 64 bytes of an already parsed keypair file; `path` names it in the error. */
export function keypairFromJson(value: unknown, path: string): Uint8Array {
  const bytes = secretKeyFromJson(value);
  if (bytes === undefined) {
    throw new WalletKeyError(
      'wallet_key_invalid',
      path,
      'not a Solana keypair file: expected a JSON array of 64 numbers from 0 to 255',
      `write it with solana-keygen new --outfile ${path}, or restore it from its backup`,
    );
  }
  return bytes;
}
