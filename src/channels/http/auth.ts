import { hash, timingSafeEqual } from 'node:crypto';

/** Compares bearer tokens in constant time (hashing first makes the lengths equal). */
export function createTokenCheck(tokens: readonly string[]): (header: string | undefined) => boolean {
  const digests = tokens.map((t) => hash('sha256', t, 'buffer'));
  return (header) => {
    if (!header?.startsWith('Bearer ')) return false;
    const presented = hash('sha256', header.slice('Bearer '.length).trim(), 'buffer');
    let ok = false;
    for (const digest of digests) ok = timingSafeEqual(digest, presented) || ok;
    return ok;
  };
}

/** A short stable id for a token, for rate-limit keys and logs, that does not reveal it. */
export function tokenFingerprint(header: string): string {
  return hash('sha256', header, 'hex').slice(0, 16);
}
