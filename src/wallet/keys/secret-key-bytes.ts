/**
 * The 64 bytes of a Solana secret key from the JSON that `solana-keygen` writes: an array of 64
 * integers from 0 to 255. Returns undefined for anything else, so each caller can say where the
 * bad value came from without quoting it.
 */
export function secretKeyFromJson(value: unknown): Uint8Array | undefined {
  if (!Array.isArray(value) || value.length !== 64) return undefined;
  const bytes = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    const n: unknown = value[i];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 255) {
      bytes.fill(0);
      return undefined;
    }
    bytes[i] = n;
  }
  return bytes;
}

/** Parses JSON text without letting the parser's error (which quotes the text) escape. */
export function parseJsonQuietly(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
