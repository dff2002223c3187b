/**
 * The encrypted keystore, version 1: a JSON file holding the wallet's 32-byte seed encrypted under
 * a passphrase, so the key at rest is useless without the passphrase. Described for operators in
 * docs/wallet-keystore.md.
 *
 *   {
 *     "version": 1,
 *     "kind": "solana-ed25519",
 *     "publicKey": "<base58 of the 32-byte public key>",
 *     "kdf": { "name": "scrypt", "N": 131072, "r": 8, "p": 1, "salt": "<base64, 16 bytes>" },
 *     "cipher": { "name": "aes-256-gcm", "iv": "<base64, 12 bytes>", "tag": "<base64, 16 bytes>" },
 *     "ciphertext": "<base64, the 32-byte seed encrypted>"
 *   }
 *
 *   key        = scrypt(passphrase in Unicode NFKC, salt, N, r, p) -> 32 bytes
 *   ciphertext = AES-256-GCM(key, iv, seed) with additional authenticated data
 *                UTF-8 of JSON.stringify([version, kind, publicKey])
 *
 * The public key sits in clear so the wallet's address can be shown without the passphrase; as it
 * is authenticated data, a file whose address (or version, or kind) was swapped fails to decrypt
 * instead of presenting someone else's address. NFKC makes a passphrase typed on another keyboard
 * or OS, which may compose accents differently, derive the same key.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { PublicKey } from '@solana/web3.js';
import { Ed25519Signer } from './ed25519-signer.js';
import { readPrivateFile } from './private-file.js';
import { parseJsonQuietly } from './secret-key-bytes.js';
import { WalletKeyError } from './wallet-key-error.js';

export interface EncryptedKeystore {
  version: 1;
  kind: 'solana-ed25519';
  publicKey: string;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: { name: 'aes-256-gcm'; iv: string; tag: string };
  ciphertext: string;
}

export interface EncryptKeystoreOptions {
  /** scrypt cost, a power of two from 2^14 to 2^20. Default: 2^17 (about 128 MiB and a few tenths of a second). */
  N?: number;
}

/** Passphrases shorter than this fall to an offline guess even behind scrypt. */
export const MIN_PASSPHRASE_LENGTH = 12;

const DEFAULT_N = 2 ** 17;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEED_BYTES = 32;
/** Bounds on a file's scrypt parameters, so a crafted keystore cannot make the agent allocate gigabytes. */
const MIN_N = 2 ** 14;
const MAX_N = 2 ** 20;
const MAX_SCRYPT_MEMORY = 2 ** 30;

const LOCKED = 'could not decrypt the keystore: wrong passphrase or a damaged file';

/** Encrypts a Solana secret key (64 bytes, or the 32-byte seed) under `passphrase`. */
export async function encryptKeystore(
  secretKey: Uint8Array,
  passphrase: string,
  options: EncryptKeystoreOptions = {},
): Promise<EncryptedKeystore> {
  const N = options.N ?? DEFAULT_N;
  if (!isPowerOfTwoIn(N, MIN_N, MAX_N)) {
    throw new RangeError(`options.N must be a power of two from 2^14 to 2^20, got ${N}`);
  }
  const normalized = passphrase.normalize('NFKC');
  if ([...normalized].length < MIN_PASSPHRASE_LENGTH) {
    throw new RangeError(`the keystore passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
  // Building the signer checks that the key's two halves agree before anything is encrypted.
  const publicKey = new Ed25519Signer(secretKey).address;
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const key = await deriveKey(normalized, salt, N, SCRYPT_R, SCRYPT_P);
  try {
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(publicKey));
    const ciphertext = Buffer.concat([cipher.update(secretKey.subarray(0, SEED_BYTES)), cipher.final()]);
    return {
      version: 1,
      kind: 'solana-ed25519',
      publicKey,
      kdf: { name: 'scrypt', N, r: SCRYPT_R, p: SCRYPT_P, salt: salt.toString('base64') },
      cipher: { name: 'aes-256-gcm', iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64') },
      ciphertext: ciphertext.toString('base64'),
    };
  } finally {
    key.fill(0);
  }
}

/**
 * Decrypts a keystore (parsed, or its JSON text) into a signer. `source` names the file in errors.
 * A wrong passphrase and a tampered file are indistinguishable by design: both fail GCM's check.
 */
export async function decryptKeystore(
  json: unknown,
  passphrase: string,
  source = 'the keystore',
): Promise<Ed25519Signer> {
  const keystore = decodeKeystore(typeof json === 'string' ? parseJsonQuietly(json) : json, source);
  const key = await deriveKey(
    passphrase.normalize('NFKC'),
    keystore.salt,
    keystore.N,
    keystore.r,
    keystore.p,
  );
  let seed: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, keystore.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(keystore.publicKey));
    decipher.setAuthTag(keystore.tag);
    seed = Buffer.concat([decipher.update(keystore.ciphertext), decipher.final()]);
  } catch {
    throw new WalletKeyError(
      'wallet_keystore_locked',
      source,
      LOCKED,
      'check the passphrase (WALLET_KEYSTORE_PASSPHRASE or its _FILE), or restore the file from its backup',
    );
  } finally {
    key.fill(0);
  }
  const secretKey = Buffer.concat([seed, keystore.publicKeyBytes]);
  try {
    return new Ed25519Signer(secretKey, { source });
  } finally {
    seed.fill(0);
    secretKey.fill(0);
  }
}

/** Reads a keystore file, private to its owner like a keypair file, and checks its shape. */
export async function readKeystoreFile(path: string): Promise<EncryptedKeystore> {
  const raw = await readPrivateFile(path, 'keystore');
  return parseKeystore(parseJsonQuietly(raw.toString('utf8')), path);
}

/** Checks that `value` is a version 1 keystore; `source` names it in errors. */
export function parseKeystore(value: unknown, source: string): EncryptedKeystore {
  return decodeKeystore(value, source).file;
}

interface DecodedKeystore {
  file: EncryptedKeystore;
  publicKey: string;
  publicKeyBytes: Buffer;
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

function decodeKeystore(value: unknown, source: string): DecodedKeystore {
  const invalid = (
    problem: string,
    fix = 'recreate it with `keystore create`, or restore it from its backup',
  ) => new WalletKeyError('wallet_key_invalid', source, problem, fix);
  if (!isRecord(value)) throw invalid('not a wallet keystore: expected a JSON object');
  if (value.version !== 1) {
    throw invalid(
      'unsupported keystore version (this agent reads version 1)',
      'upgrade the agent, or recreate the keystore with `keystore create`',
    );
  }
  if (value.kind !== 'solana-ed25519') throw invalid('the keystore does not hold a solana-ed25519 key');
  const { kdf, cipher } = value;
  if (!isRecord(kdf) || kdf.name !== 'scrypt') throw invalid('kdf.name must be "scrypt"');
  if (!isRecord(cipher) || cipher.name !== 'aes-256-gcm') throw invalid('cipher.name must be "aes-256-gcm"');
  const { N, r, p } = kdf;
  if (
    !isPowerOfTwoIn(N, MIN_N, MAX_N) ||
    !isIntegerIn(r, 1, 16) ||
    !isIntegerIn(p, 1, 16) ||
    128 * N * r > MAX_SCRYPT_MEMORY
  ) {
    throw invalid('kdf.N, kdf.r or kdf.p is out of range');
  }
  const publicKeyBytes = decodePublicKey(value.publicKey);
  if (publicKeyBytes === undefined) throw invalid('publicKey is not a base58 Solana public key');
  const salt = decodeBase64(kdf.salt, SALT_BYTES);
  if (salt === undefined) throw invalid(`kdf.salt must be ${SALT_BYTES} bytes of base64`);
  const iv = decodeBase64(cipher.iv, IV_BYTES);
  if (iv === undefined) throw invalid(`cipher.iv must be ${IV_BYTES} bytes of base64`);
  const tag = decodeBase64(cipher.tag, TAG_BYTES);
  if (tag === undefined) throw invalid(`cipher.tag must be ${TAG_BYTES} bytes of base64`);
  const ciphertext = decodeBase64(value.ciphertext, SEED_BYTES);
  if (ciphertext === undefined) throw invalid(`ciphertext must be ${SEED_BYTES} bytes of base64`);
  const publicKey = value.publicKey as string;
  return {
    file: {
      version: 1,
      kind: 'solana-ed25519',
      publicKey,
      kdf: { name: 'scrypt', N, r, p, salt: kdf.salt as string },
      cipher: { name: 'aes-256-gcm', iv: cipher.iv as string, tag: cipher.tag as string },
      ciphertext: value.ciphertext as string,
    },
    publicKey,
    publicKeyBytes,
    N,
    r,
    p,
    salt,
    iv,
    tag,
    ciphertext,
  };
}

function associatedData(publicKey: string): Buffer {
  return Buffer.from(JSON.stringify([1, 'solana-ed25519', publicKey]), 'utf8');
}

function deriveKey(passphrase: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  // scrypt needs about 128 * N * r bytes; Node's default ceiling (32 MiB) is below the default N.
  const maxmem = 2 * 128 * N * r;
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, 32, { N, r, p, maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function decodePublicKey(value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const key = new PublicKey(value);
    // Only the canonical spelling, so the address shown is exactly the one authenticated.
    return key.toBase58() === value ? key.toBuffer() : undefined;
  } catch {
    return undefined;
  }
}

function decodeBase64(value: unknown, length: number): Buffer | undefined {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return undefined;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === length && bytes.toString('base64') === value ? bytes : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function isPowerOfTwoIn(value: unknown, min: number, max: number): value is number {
  return isIntegerIn(value, min, max) && (value & (value - 1)) === 0;
}
