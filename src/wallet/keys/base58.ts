import bs58 from 'bs58';

/** Decodes base58, or returns undefined; bs58's own errors are not passed on. */
export function decodeBase58(text: string): Uint8Array | undefined {
  try {
    return bs58.decode(text);
  } catch {
    return undefined;
  }
}
