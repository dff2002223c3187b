import { createHmac, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { oneAtATime } from '../core/one-at-a-time.js';
import type { Ed25519Signer } from './keys/ed25519-signer.js';
import { keySourceOf, loadWalletSigner } from './keys/key-source.js';
import type { RenewableSigner } from './keys/renewable-signer.js';
import { isWalletKeyError } from './keys/wallet-key-error.js';
import type { WalletKeyConfig } from './wallet-config.js';

/** What `Wallet.renewKey` did with rotated key secrets. */
export type RenewKeyResult =
  /** The settings are the ones in use: nothing was read. */
  | { outcome: 'unchanged' }
  /** The new settings load this wallet's key, and the wallet signs with it from now on. */
  | { outcome: 'renewed' }
  /** The new settings do not load a key (yet); the key in use stays, and the next refresh tries again. */
  | { outcome: 'kept'; reason: string }
  /** The new settings hold another wallet's key; the key in use stays until a restart. */
  | { outcome: 'refused'; reason: string };

export interface KeyRenewalOptions {
  /** The settings the signer's key was loaded from. */
  key: Readonly<WalletKeyConfig>;
  signer: RenewableSigner;
  logger: Logger;
  /** Loads a key from settings. Default: as at start (`loadWalletSigner`). */
  load?: (key: Readonly<WalletKeyConfig>) => Promise<Ed25519Signer>;
}

const FIELDS = ['keypairFile', 'keystoreFile', 'keystorePassphrase', 'secretKey'] as const;
type KeyField = (typeof FIELDS)[number];

/** How the operator knows each setting: its config path and its environment variable. */
const SETTING_NAMES: Record<KeyField, string> = {
  keypairFile: 'wallet.key.keypairFile (WALLET_KEYPAIR_FILE)',
  keystoreFile: 'wallet.key.keystoreFile (WALLET_KEYSTORE_FILE)',
  keystorePassphrase: 'wallet.key.keystorePassphrase (WALLET_KEYSTORE_PASSPHRASE)',
  secretKey: 'wallet.key.secretKey (WALLET_SECRET_KEY)',
};

/**
 * `Wallet.renewKey`: takes rotated key secrets without a restart, failing closed. A key that does
 * not load, or loads another wallet, never replaces the one in use. Renewals run one at a time, so
 * an older refresh finishing late cannot undo a newer one. Nothing logged or returned holds a
 * secret: only setting names, file paths, addresses and `WalletKeyError` messages (which are
 * written to be safe).
 */
export function keyRenewal(
  options: KeyRenewalOptions,
): (key: Readonly<WalletKeyConfig>) => Promise<RenewKeyResult> {
  const { signer, logger } = options;
  const load = options.load ?? ((key) => loadWalletSigner(keySourceOf(key)));
  const fingerprint = keyFingerprint();
  let inUse = fingerprint(options.key);

  const renew = async (key: Readonly<WalletKeyConfig>): Promise<RenewKeyResult> => {
    const next = fingerprint(key);
    const changed = FIELDS.filter((field) => next[field] !== inUse[field]);
    if (changed.length === 0) return { outcome: 'unchanged' };
    const settings = changed.map((field) => SETTING_NAMES[field]);
    const address = signer.address;

    let loaded: Ed25519Signer;
    try {
      loaded = await load(key);
    } catch (error) {
      const reason = `${settings.join(' and ')} changed, but the key does not load from the new settings: ${describeLoadError(error, changed)}`;
      logger.warn(
        { address, settings },
        `wallet: rotated key secrets not taken; the wallet keeps signing with the key it has and tries again at the next refresh. ${reason}`,
      );
      return { outcome: 'kept', reason };
    }

    if (loaded.address !== address) {
      const reason =
        `the new key settings (${settings.join(', ')}) hold the key of ${loaded.address}, not of this wallet (${address}); ` +
        'pending transfers, approvals and the daily caps refer to this wallet, so switching wallets needs a restart';
      logger.error(
        { address, newAddress: loaded.address, settings },
        `wallet: rotated key secrets hold a different wallet; a restart is needed to switch wallets, and until then the wallet keeps signing as ${address}`,
      );
      return { outcome: 'refused', reason };
    }

    signer.replace(loaded);
    inUse = next;
    logger.info({ address, settings }, 'wallet: key renewed from rotated secrets');
    return { outcome: 'renewed' };
  };

  return oneAtATime(renew);
}

/**
 * Per setting, a keyed digest of its value: enough to tell what changed while holding no copy of
 * the secrets, nor a plain hash a short passphrase could be guessed back from.
 */
function keyFingerprint(): (key: Readonly<WalletKeyConfig>) => Record<KeyField, string> {
  const secret = randomBytes(32);
  return (key) => {
    const digests = {} as Record<KeyField, string>;
    for (const field of FIELDS) {
      const value = key[field];
      digests[field] =
        value === undefined
          ? ''
          : createHmac('sha256', secret).update(field).update('\0').update(value).digest('hex');
    }
    return digests;
  };
}

/** The load failure and its fix, without the secrets (a `WalletKeyError` message never holds one). */
function describeLoadError(error: unknown, changed: KeyField[]): string {
  if (!isWalletKeyError(error)) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    return `an unexpected ${(error as Error | undefined)?.name ?? 'error'}${code ? ` (${code})` : ''}`;
  }
  if (error.code === 'wallet_keystore_locked' && changed.includes('keystorePassphrase')) {
    return (
      `the keystore ${error.source} does not open with the new passphrase; ` +
      'fix: re-encrypt the keystore with the new passphrase (`keystore create` from the keypair file), or put the previous passphrase back'
    );
  }
  return error.message;
}
