import { createHash } from 'node:crypto';

/**
 * What both sides of the fake Solana share: the in-process fake (test/fakes/fake-solana.ts) and
 * the client of its process (test/fakes/fake-solana-remote.ts). Kept apart from the fake so that
 * importing these never loads LiteSVM, which must stay out of test workers.
 */

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Genesis hashes as `getGenesisHash` returns them, to tell clusters apart. */
export const DEVNET_GENESIS_HASH = 'EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG';
export const MAINNET_GENESIS_HASH = '5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d';
/** The fake's own cluster, so code that checks the cluster sees neither devnet nor mainnet. */
export const FAKE_GENESIS_HASH = toBase58(createHash('sha256').update('fake-solana genesis').digest());

export const LAMPORTS_PER_SIGNATURE = 5000;

export function toBase58(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let text = '';
  for (; n > 0n; n /= 58n) text = ALPHABET[Number(n % 58n)] + text;
  for (const b of bytes) {
    if (b !== 0) break;
    text = `1${text}`;
  }
  return text;
}

export function fromBase58(text: string): Uint8Array {
  let n = 0n;
  for (const c of text) {
    const digit = ALPHABET.indexOf(c);
    if (digit < 0) throw new Error(`invalid base58 character ${c}`);
    n = n * 58n + BigInt(digit);
  }
  const bytes: number[] = [];
  for (; n > 0n; n >>= 8n) bytes.unshift(Number(n & 255n));
  for (const c of text) {
    if (c !== '1') break;
    bytes.unshift(0);
  }
  return Uint8Array.from(bytes);
}
