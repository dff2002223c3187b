/**
 * Why the wallet's key could not be loaded. Messages name where the key was looked for (a file path
 * or an environment variable) and the fix, and never any key bytes or passphrase, so they are safe
 * to log and to show the operator.
 */
export type WalletKeyErrorCode =
  /** The file or secret could not be read at all (missing, no permission, a directory). */
  | 'wallet_key_unreadable'
  /** The file is readable or writable by group or others. */
  | 'wallet_key_insecure'
  /** The content is not a Solana key, or its public key does not match its seed. */
  | 'wallet_key_invalid'
  /** The keystore did not decrypt: wrong passphrase or a damaged file. */
  | 'wallet_keystore_locked';

export class WalletKeyError extends Error {
  readonly isWalletKeyError = true;
  readonly code: WalletKeyErrorCode;
  /** Where the key was looked for: a file path or the name of an environment variable. */
  readonly source: string;
  readonly fix: string;

  constructor(code: WalletKeyErrorCode, source: string, problem: string, fix: string) {
    // No `cause`: the causes at hand (JSON.parse, bs58) quote the input they choked on.
    super(`${problem} (${source}); fix: ${fix}`);
    this.name = 'WalletKeyError';
    this.code = code;
    this.source = source;
    this.fix = fix;
  }
}

export function isWalletKeyError(error: unknown): error is WalletKeyError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { isWalletKeyError?: unknown }).isWalletKeyError === true
  );
}
