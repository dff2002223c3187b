import { hash, timingSafeEqual } from 'node:crypto';

/** A secret as `matchesSecret` compares it: its SHA-256 digest. */
export function secretDigest(value: string): Buffer {
  return hash('sha256', value, 'buffer');
}

/**
 * Whether `presented` is one of the secrets whose digests are given (bearer tokens, a webhook's
 * secret and the one it replaced). Hashing makes the lengths equal, so the comparison time says
 * nothing about a secret; every digest is compared (no early exit), so neither does which one
 * matched.
 */
export function matchesSecret(presented: string, digests: readonly Buffer[]): boolean {
  const presentedDigest = secretDigest(presented);
  let match = false;
  for (const digest of digests) match = timingSafeEqual(digest, presentedDigest) || match;
  return match;
}
