import { hash } from 'node:crypto';
import { matchesSecret, secretDigest } from '../secret-match.js';

/** Checks `Authorization: Bearer <token>` against `tokens`, in constant time (see matchesSecret). */
export function createTokenCheck(tokens: readonly string[]): (header: string | undefined) => boolean {
  const digests = tokens.map(secretDigest);
  return (header) =>
    header?.startsWith('Bearer ') === true && matchesSecret(header.slice('Bearer '.length).trim(), digests);
}

/** A short stable id for a token, for rate-limit keys and logs, that does not reveal it. */
export function tokenFingerprint(header: string): string {
  return hash('sha256', header, 'hex').slice(0, 16);
}
