import { createHash, timingSafeEqual } from 'node:crypto';

/** Compares bearer tokens in constant time (hashing first makes the lengths equal). */
export function createTokenCheck(tokens: readonly string[]): (header: string | undefined) => boolean {
  const digests = tokens.map((t) => createHash('sha256').update(t).digest());
  return (header) => {
    if (!header?.startsWith('Bearer ')) return false;
    const presented = createHash('sha256').update(header.slice('Bearer '.length).trim()).digest();
    let ok = false;
    for (const digest of digests) ok = timingSafeEqual(digest, presented) || ok;
    return ok;
  };
}

/** A short stable id for a token, for rate-limit keys and logs, that does not reveal it. */
export function tokenFingerprint(header: string): string {
  return createHash('sha256').update(header).digest('hex').slice(0, 16);
}
