import { createPublicKey, verify } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Keypair, PublicKey, SystemProgram, Transaction } from '@solana/web3.js';
import bs58 from 'bs58';
import { describe, expect, it } from 'vitest';
import { Ed25519Signer } from '../../../src/wallet/keys/ed25519-signer.js';
import { decryptKeystore, encryptKeystore } from '../../../src/wallet/keys/encrypted-keystore.js';
import { loadWalletSigner } from '../../../src/wallet/keys/key-source.js';
import { readKeypairFile } from '../../../src/wallet/keys/keypair-file.js';
import { runKeystoreCommand } from '../../../src/wallet/keys/keystore-cli.js';
import { isWalletKeyError, type WalletKeyError } from '../../../src/wallet/keys/wallet-key-error.js';

/** scrypt cost for tests: the lowest the format accepts, so each derivation takes milliseconds. */
const FAST = { N: 2 ** 14 };
const PASSPHRASE = 'correct horse battery staple';
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const tempDir = () => mkdtempSync(join(tmpdir(), 'wallet-keys-'));

function writeSecretFile(path: string, content: string, mode = 0o600): string {
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

function keypairFile(keypair: Keypair, mode = 0o600): string {
  return writeSecretFile(join(tempDir(), 'id.json'), JSON.stringify(Array.from(keypair.secretKey)), mode);
}

async function walletKeyError(promise: Promise<unknown>): Promise<WalletKeyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isWalletKeyError(error)) throw new Error(`expected a WalletKeyError, got ${String(error)}`);
  return error;
}

/** Every way an error might reach a log: message, stack, JSON and inspect. */
const everything = (error: Error) =>
  `${error.message}\n${error.stack}\n${JSON.stringify(error)}\n${inspect(error)}`;

function fakeIo() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (text: string) => (out.stdout += text) },
      stderr: { write: (text: string) => (out.stderr += text) },
    },
  };
}

describe('Ed25519Signer', () => {
  it('signs so that node:crypto verifies with the public key it reports', async () => {
    const keypair = Keypair.generate();
    const signer = new Ed25519Signer(keypair.secretKey);
    expect(await signer.publicKey()).toBe(keypair.publicKey.toBase58());

    const message = Buffer.from('a message the policy approved');
    const signature = await signer.signMessage(message);
    expect(signature).toHaveLength(64);
    const publicKey = createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, new PublicKey(await signer.publicKey()).toBuffer()]),
      format: 'der',
      type: 'spki',
    });
    expect(verify(null, message, publicKey, signature)).toBe(true);
    expect(verify(null, Buffer.from('another message'), publicKey, signature)).toBe(false);
  });

  it('signs a web3.js transaction exactly as a web3.js Keypair does', async () => {
    const keypair = Keypair.generate();
    const signer = new Ed25519Signer(keypair.secretKey);
    const build = () =>
      new Transaction({
        feePayer: keypair.publicKey,
        recentBlockhash: Keypair.generate().publicKey.toBase58(),
      }).add(
        SystemProgram.transfer({
          fromPubkey: keypair.publicKey,
          toPubkey: Keypair.generate().publicKey,
          lamports: 1_000,
        }),
      );
    const tx = build();
    const signature = await signer.signMessage(tx.serializeMessage());
    tx.addSignature(keypair.publicKey, Buffer.from(signature));
    expect(tx.verifySignatures()).toBe(true);

    // Ed25519 is deterministic: the same message signed by web3.js gives the same bytes.
    const reference = Transaction.from(tx.serialize());
    reference.sign(keypair);
    expect(Buffer.from(reference.signature as Buffer)).toEqual(Buffer.from(signature));
  });

  it('accepts the 32-byte seed alone', async () => {
    const keypair = Keypair.generate();
    const signer = new Ed25519Signer(keypair.secretKey.slice(0, 32));
    expect(await signer.publicKey()).toBe(keypair.publicKey.toBase58());
  });

  it('refuses a 64-byte key whose public half does not match its seed', () => {
    const spliced = new Uint8Array(64);
    spliced.set(Keypair.generate().secretKey.subarray(0, 32), 0);
    spliced.set(Keypair.generate().publicKey.toBytes(), 32);
    expect(() => new Ed25519Signer(spliced, { source: '/keys/id.json' })).toThrow(
      expect.objectContaining({ code: 'wallet_key_invalid', source: '/keys/id.json' }),
    );
    expect(() => new Ed25519Signer(new Uint8Array(63))).toThrow(
      expect.objectContaining({ code: 'wallet_key_invalid' }),
    );
  });

  it('shows only its public key when logged or serialized', () => {
    const keypair = Keypair.generate();
    const signer = new Ed25519Signer(keypair.secretKey);
    const label = `Ed25519Signer(${keypair.publicKey.toBase58()})`;
    expect(JSON.stringify(signer)).toBe(JSON.stringify(label));
    expect(inspect(signer)).toBe(label);
    expect(String(signer)).toBe(label);
    expect(Object.keys(signer)).toEqual([]);

    const seed = Buffer.from(keypair.secretKey.subarray(0, 32));
    const shown = [
      JSON.stringify({ signer }),
      inspect({ signer }, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
      `${signer}`,
    ].join('\n');
    for (const spelling of [seed.toString('hex'), seed.toString('base64'), Array.from(seed).join(',')]) {
      expect(shown).not.toContain(spelling);
    }
  });
});

describe('keypair file', () => {
  it('loads a mode 600 solana-keygen file', async () => {
    const keypair = Keypair.generate();
    const signer = await loadWalletSigner({ kind: 'keypair-file', path: keypairFile(keypair) });
    expect(await signer.publicKey()).toBe(keypair.publicKey.toBase58());
    expect(await readKeypairFile(keypairFile(keypair))).toEqual(keypair.secretKey);
  });

  it.each([0o644, 0o640, 0o620, 0o604])('refuses mode %o, naming the path and the chmod', async (mode) => {
    const path = keypairFile(Keypair.generate(), mode);
    const error = await walletKeyError(loadWalletSigner({ kind: 'keypair-file', path }));
    expect(error.code).toBe('wallet_key_insecure');
    expect(error.message).toContain(path);
    expect(error.message).toContain(`chmod 600 ${path}`);
  });

  it('refuses malformed content without repeating it', async () => {
    const numbers = Array.from(Keypair.generate().secretKey);
    const dir = tempDir();
    const cases = {
      short: JSON.stringify(numbers.slice(0, 63)),
      'out of range': JSON.stringify([...numbers.slice(0, 63), 300]),
      'not JSON': `[${numbers.slice(0, 40).join(', ')}, oops`,
      object: JSON.stringify({ secretKey: numbers }),
    };
    for (const [name, content] of Object.entries(cases)) {
      const path = writeSecretFile(join(dir, `${name}.json`), content);
      const error = await walletKeyError(loadWalletSigner({ kind: 'keypair-file', path }));
      expect(error.code).toBe('wallet_key_invalid');
      expect(error.message).toContain(path);
      const shown = everything(error);
      expect(shown).not.toContain(numbers.slice(0, 4).join(','));
      expect(shown).not.toContain(numbers.slice(0, 4).join(', '));
      expect(shown).not.toContain('oops');
    }
  });

  it('reports a missing file as unreadable', async () => {
    const path = join(tempDir(), 'missing.json');
    const error = await walletKeyError(loadWalletSigner({ kind: 'keypair-file', path }));
    expect(error.code).toBe('wallet_key_unreadable');
    expect(error.message).toContain(path);
    expect(error.message).toContain('ENOENT');
  });
});

describe('secret source', () => {
  it('takes the JSON array or the base58 of the 64 bytes', async () => {
    const keypair = Keypair.generate();
    const address = keypair.publicKey.toBase58();
    const json = await loadWalletSigner({
      kind: 'secret',
      value: `${JSON.stringify(Array.from(keypair.secretKey))}\n`,
    });
    const base58 = await loadWalletSigner({ kind: 'secret', value: bs58.encode(keypair.secretKey) });
    expect(await json.publicKey()).toBe(address);
    expect(await base58.publicKey()).toBe(address);
  });

  it('names the variable, never the value', async () => {
    const keypair = Keypair.generate();
    const truncated = bs58.encode(keypair.secretKey.subarray(0, 40));
    for (const value of [truncated, `${truncated}!`, '[1, 2, 3]', '']) {
      const error = await walletKeyError(
        loadWalletSigner({ kind: 'secret', value, name: 'WALLET_SECRET_KEY_FILE' }),
      );
      expect(error.code).toBe('wallet_key_invalid');
      expect(error.message).toContain('WALLET_SECRET_KEY_FILE');
      if (value !== '') expect(everything(error)).not.toContain(value);
    }
  });
});

describe('encrypted keystore', () => {
  it('round-trips a key under its passphrase', async () => {
    const keypair = Keypair.generate();
    const keystore = await encryptKeystore(keypair.secretKey, PASSPHRASE, FAST);
    expect(keystore).toMatchObject({
      version: 1,
      kind: 'solana-ed25519',
      publicKey: keypair.publicKey.toBase58(),
      kdf: { name: 'scrypt', N: 2 ** 14, r: 8, p: 1 },
      cipher: { name: 'aes-256-gcm' },
    });
    expect(Buffer.from(keystore.kdf.salt, 'base64')).toHaveLength(16);
    expect(Buffer.from(keystore.cipher.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(keystore.cipher.tag, 'base64')).toHaveLength(16);
    expect(Buffer.from(keystore.ciphertext, 'base64')).toHaveLength(32);

    const signer = await decryptKeystore(keystore, PASSPHRASE);
    expect(await signer.publicKey()).toBe(keypair.publicKey.toBase58());
    const fromText = await decryptKeystore(JSON.stringify(keystore), PASSPHRASE);
    expect(await fromText.publicKey()).toBe(keypair.publicKey.toBase58());
  });

  it('derives with the default cost (2^17) within its memory limit', async () => {
    const keypair = Keypair.generate();
    const keystore = await encryptKeystore(keypair.secretKey, PASSPHRASE);
    expect(keystore.kdf.N).toBe(2 ** 17);
    expect(await (await decryptKeystore(keystore, PASSPHRASE)).publicKey()).toBe(
      keypair.publicKey.toBase58(),
    );
  });

  it('treats a passphrase typed with composed or decomposed accents as the same', async () => {
    const keypair = Keypair.generate();
    const keystore = await encryptKeystore(keypair.secretKey, 'caf\u00e9 au lait, merci', FAST);
    const signer = await decryptKeystore(keystore, 'cafe\u0301 au lait, merci');
    expect(await signer.publicKey()).toBe(keypair.publicKey.toBase58());
  });

  it('refuses a wrong passphrase without repeating it', async () => {
    const keystore = await encryptKeystore(Keypair.generate().secretKey, PASSPHRASE, FAST);
    const error = await walletKeyError(
      decryptKeystore(keystore, 'not the passphrase at all', '/keys/ks.json'),
    );
    expect(error.code).toBe('wallet_keystore_locked');
    expect(error.message).toContain('could not decrypt the keystore: wrong passphrase or a damaged file');
    expect(error.message).toContain('/keys/ks.json');
    expect(everything(error)).not.toContain('not the passphrase at all');
  });

  it('refuses a file whose public key or ciphertext was swapped', async () => {
    const keystore = await encryptKeystore(Keypair.generate().secretKey, PASSPHRASE, FAST);
    const otherAddress = { ...keystore, publicKey: Keypair.generate().publicKey.toBase58() };
    const ciphertext = Buffer.from(keystore.ciphertext, 'base64');
    ciphertext[0] = (ciphertext[0] as number) ^ 1;
    const flipped = { ...keystore, ciphertext: ciphertext.toString('base64') };
    for (const tampered of [otherAddress, flipped]) {
      const error = await walletKeyError(decryptKeystore(tampered, PASSPHRASE));
      expect(error.code).toBe('wallet_keystore_locked');
    }
  });

  it('refuses other versions and malformed fields as invalid', async () => {
    const keystore = await encryptKeystore(Keypair.generate().secretKey, PASSPHRASE, FAST);
    const cases = [
      { ...keystore, version: 2 },
      { ...keystore, kind: 'bitcoin' },
      { ...keystore, kdf: { ...keystore.kdf, N: 2 ** 30 } },
      { ...keystore, cipher: { ...keystore.cipher, iv: 'AAAA' } },
      { ...keystore, publicKey: 'not base58!' },
      [1, 2, 3],
      'not json',
    ];
    for (const value of cases) {
      expect((await walletKeyError(decryptKeystore(value, PASSPHRASE))).code).toBe('wallet_key_invalid');
    }
  });

  it('refuses short passphrases and mismatched keys at encryption', async () => {
    const keypair = Keypair.generate();
    const short = await encryptKeystore(keypair.secretKey, 'eleven char', FAST).catch((e: unknown) => e);
    expect(short).toBeInstanceOf(RangeError);
    expect((short as Error).message).toMatch(/at least 12 characters/);
    expect((short as Error).message).not.toContain('eleven char');
    await expect(encryptKeystore(keypair.secretKey, PASSPHRASE, { N: 1000 })).rejects.toThrow(/options\.N/);
    const spliced = Uint8Array.from([
      ...keypair.secretKey.subarray(0, 32),
      ...Keypair.generate().publicKey.toBytes(),
    ]);
    await expect(encryptKeystore(spliced, PASSPHRASE, FAST)).rejects.toMatchObject({
      code: 'wallet_key_invalid',
    });
  });

  it('loads from a mode 600 file and refuses a mode 644 one', async () => {
    const keypair = Keypair.generate();
    const keystore = JSON.stringify(await encryptKeystore(keypair.secretKey, PASSPHRASE, FAST));
    const dir = tempDir();
    const path = writeSecretFile(join(dir, 'ok.json'), keystore);
    const signer = await loadWalletSigner({ kind: 'keystore', path, passphrase: PASSPHRASE });
    expect(await signer.publicKey()).toBe(keypair.publicKey.toBase58());

    const open = writeSecretFile(join(dir, 'open.json'), keystore, 0o644);
    const error = await walletKeyError(
      loadWalletSigner({ kind: 'keystore', path: open, passphrase: PASSPHRASE }),
    );
    expect(error.code).toBe('wallet_key_insecure');
    expect(error.message).toContain(`chmod 600 ${open}`);
  });
});

describe('keystore command', () => {
  it('creates a mode 600 keystore from a keypair file, and prints both addresses', async () => {
    const keypair = Keypair.generate();
    const input = keypairFile(keypair);
    const output = join(tempDir(), 'wallet.keystore.json');
    const { out, io } = fakeIo();
    const code = await runKeystoreCommand(
      ['create', input, output],
      { WALLET_KEYSTORE_PASSPHRASE: PASSPHRASE },
      io,
    );
    expect(out.stderr).toBe('');
    expect(code).toBe(0);
    expect(out.stdout).toContain(keypair.publicKey.toBase58());
    expect(out.stdout + out.stderr).not.toContain(PASSPHRASE);
    expect(statSync(output).mode & 0o777).toBe(0o600);
    const signer = await loadWalletSigner({ kind: 'keystore', path: output, passphrase: PASSPHRASE });
    expect(await signer.publicKey()).toBe(keypair.publicKey.toBase58());

    for (const file of [input, output]) {
      const printed = fakeIo();
      expect(await runKeystoreCommand(['address', file], {}, printed.io)).toBe(0);
      expect(printed.out.stdout).toBe(`${keypair.publicKey.toBase58()}\n`);
    }
  });

  it('reads the passphrase from WALLET_KEYSTORE_PASSPHRASE_FILE without its newline', async () => {
    const keypair = Keypair.generate();
    const dir = tempDir();
    const passphraseFile = writeSecretFile(join(dir, 'passphrase'), `${PASSPHRASE}\n`);
    const output = join(dir, 'ks.json');
    const { io } = fakeIo();
    const env = { WALLET_KEYSTORE_PASSPHRASE_FILE: passphraseFile };
    expect(await runKeystoreCommand(['create', keypairFile(keypair), output], env, io)).toBe(0);
    const signer = await loadWalletSigner({ kind: 'keystore', path: output, passphrase: PASSPHRASE });
    expect(await signer.publicKey()).toBe(keypair.publicKey.toBase58());
  });

  it('refuses to overwrite, to run without a passphrase, and bad usage', async () => {
    const input = keypairFile(Keypair.generate());
    const existing = writeSecretFile(join(tempDir(), 'taken.json'), 'keep me');
    const env = { WALLET_KEYSTORE_PASSPHRASE: PASSPHRASE };

    const overwrite = fakeIo();
    expect(await runKeystoreCommand(['create', input, existing], env, overwrite.io)).toBe(1);
    expect(overwrite.out.stderr).toContain('refusing to overwrite');
    expect(readFileSync(existing, 'utf8')).toBe('keep me');

    const noPassphrase = fakeIo();
    const output = join(tempDir(), 'ks.json');
    expect(await runKeystoreCommand(['create', input, output], {}, noPassphrase.io)).toBe(1);
    expect(noPassphrase.out.stderr).toContain('WALLET_KEYSTORE_PASSPHRASE');

    const usage = fakeIo();
    expect(await runKeystoreCommand(['create', input], env, usage.io)).toBe(2);
    expect(usage.out.stderr).toContain('usage:');
  });

  it('refuses to print the address of a file others can read', async () => {
    const path = keypairFile(Keypair.generate(), 0o644);
    const { out, io } = fakeIo();
    expect(await runKeystoreCommand(['address', path], {}, io)).toBe(1);
    expect(out.stderr).toContain(`chmod 600 ${path}`);
  });
});
