import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keypair } from '@solana/web3.js';
import bs58 from 'bs58';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Wallet } from '../../../src/wallet/create-wallet.js';
import { keyRenewal } from '../../../src/wallet/key-renewal.js';
import { Ed25519Signer } from '../../../src/wallet/keys/ed25519-signer.js';
import { encryptKeystore } from '../../../src/wallet/keys/encrypted-keystore.js';
import { RenewableSigner } from '../../../src/wallet/keys/renewable-signer.js';
import { startWalletAgent, type WalletAgent } from '../../support/wallet-agent.js';
import { startWalletWorld, type WalletWorld } from '../../support/wallet-world.js';

/**
 * `Wallet.renewKey` in a running agent against the local Solana runtime: rotated key secrets are
 * taken only when they load this wallet's key; otherwise the key in use stays and money still
 * moves, and nothing secret reaches a log line or a result.
 */

/** scrypt cost for tests: the lowest the format accepts. */
const FAST = { N: 2 ** 14 };
const OLD_PASSPHRASE = 'old passphrase from vault 0001';
const NEW_PASSPHRASE = 'new passphrase from vault 0002';

let world: WalletWorld | undefined;
let running: WalletAgent | undefined;

afterEach(async () => {
  await running?.agent.stop();
  await world?.close();
  running = undefined;
  world = undefined;
});

interface RotationSetup {
  world: WalletWorld;
  running: WalletAgent;
  wallet: Wallet;
  keystoreFile: string;
  /** Every line the agent logged, as pino wrote it. */
  lines: string[];
  /** Encrypts the world's wallet key into the keystore file under `passphrase`. */
  encryptKeystoreFile(passphrase: string): Promise<void>;
  /** Sends 0.1 SOL to the allowlisted friend as the owner; resolves with the reply. */
  send(): Promise<string>;
}

/** A world whose wallet key is a keystore opened with OLD_PASSPHRASE, and an agent on it. */
async function startRotationWorld(): Promise<RotationSetup> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wallet-rotation-'));
  const keystoreFile = join(dataDir, 'wallet.keystore.json');
  world = await startWalletWorld({
    dataDir,
    wallet: { key: { keystoreFile, keystorePassphrase: OLD_PASSPHRASE } },
  });
  const keypair = world.wallet;
  const encryptKeystoreFile = async (passphrase: string) => {
    writeFileSync(keystoreFile, JSON.stringify(await encryptKeystore(keypair.secretKey, passphrase, FAST)));
    chmodSync(keystoreFile, 0o600);
  };
  await encryptKeystoreFile(OLD_PASSPHRASE);
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
  running = await startWalletAgent(world, { logger });
  const wallet = running.agent.wallet;
  if (!wallet) throw new Error('the wallet is not enabled');
  const agent = running;
  const friend = world.friend.publicKey.toBase58();
  return {
    world,
    running,
    wallet,
    keystoreFile,
    lines,
    encryptKeystoreFile,
    send: () => agent.say('owner', `/wallet send 0.1 SOL ${friend}`),
  };
}

/** Each secret in every spelling a log line could hold it. */
function secretsOf(...keypairs: Keypair[]): string[] {
  return [
    OLD_PASSPHRASE,
    NEW_PASSPHRASE,
    ...keypairs.flatMap((k) => [
      bs58.encode(k.secretKey),
      JSON.stringify([...k.secretKey]),
      Buffer.from(k.secretKey).toString('base64'),
      Buffer.from(k.secretKey.subarray(0, 32)).toString('hex'),
    ]),
  ];
}

function expectNoSecret(texts: string[], secrets: string[]): void {
  for (const text of texts) for (const secret of secrets) expect(text).not.toContain(secret);
}

const logged = (lines: string[], level: number, pattern: RegExp) =>
  lines
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((entry) => entry.level === level && pattern.test(entry.msg));

describe('wallet key rotation without a restart', () => {
  it('takes a rotated passphrase once the keystore is re-encrypted with it, and still signs', async () => {
    const setup = await startRotationWorld();
    const { wallet, keystoreFile } = setup;
    expect(await setup.send()).toMatch(/confirmed|finalized/);

    // The operator re-encrypts the keystore, then Vault hands out the new passphrase.
    await setup.encryptKeystoreFile(NEW_PASSPHRASE);
    const renewed = await wallet.renewKey({ keystoreFile, keystorePassphrase: NEW_PASSPHRASE });
    expect(renewed).toEqual({ outcome: 'renewed' });
    expect(logged(setup.lines, 30, /key renewed/)).toHaveLength(1);

    expect(await setup.send()).toMatch(/confirmed|finalized/);
    expect(await setup.world.solana.balance(setup.world.friend.publicKey)).toBe(200_000_000n);
    expect(await setup.world.solana.landed()).toHaveLength(2);

    // The same settings again: nothing is read (a file that no longer opens does not matter).
    writeFileSync(keystoreFile, 'not a keystore any more');
    expect(await wallet.renewKey({ keystoreFile, keystorePassphrase: NEW_PASSPHRASE })).toEqual({
      outcome: 'unchanged',
    });
    expect(wallet.service.address).toBe(setup.world.wallet.publicKey.toBase58());
    expectNoSecret([...setup.lines, JSON.stringify(renewed)], secretsOf(setup.world.wallet));
  });

  it('keeps the key in use while the keystore does not open with the new passphrase, then takes it', async () => {
    const setup = await startRotationWorld();
    const { wallet, keystoreFile } = setup;

    // Vault has the new passphrase; the file is still encrypted under the old one.
    const kept = await wallet.renewKey({ keystoreFile, keystorePassphrase: NEW_PASSPHRASE });
    expect(kept.outcome).toBe('kept');
    const reason = 'reason' in kept ? kept.reason : '';
    expect(reason).toContain('wallet.key.keystorePassphrase');
    expect(reason).toContain(keystoreFile);
    expect(reason).toMatch(/re-encrypt the keystore with the new passphrase/);
    const warnings = logged(setup.lines, 40, /rotated key secrets not taken/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toContain('WALLET_KEYSTORE_PASSPHRASE');
    expect(warnings[0]?.msg).toMatch(/fix: re-encrypt/);

    // The agent goes on working with the key it has.
    expect(await setup.send()).toMatch(/confirmed|finalized/);
    expect(await setup.world.solana.balance(setup.world.friend.publicKey)).toBe(100_000_000n);

    // The next refresh, once the file is re-encrypted, takes it: "kept" left the old settings in use.
    await setup.encryptKeystoreFile(NEW_PASSPHRASE);
    expect(await wallet.renewKey({ keystoreFile, keystorePassphrase: NEW_PASSPHRASE })).toEqual({
      outcome: 'renewed',
    });
    expect(await setup.send()).toMatch(/confirmed|finalized/);
    expect(await setup.world.solana.balance(setup.world.friend.publicKey)).toBe(200_000_000n);
    expectNoSecret([...setup.lines, JSON.stringify(kept)], secretsOf(setup.world.wallet));
  });

  it("refuses another wallet's key, keeping the address and the key in use", async () => {
    const setup = await startRotationWorld();
    const { wallet, world: w } = setup;
    const address = w.wallet.publicKey.toBase58();
    const other = Keypair.generate();
    const otherFile = join(w.dataDir, 'other-keypair.json');
    writeFileSync(otherFile, JSON.stringify([...other.secretKey]), { mode: 0o600 });
    chmodSync(otherFile, 0o600);

    const fromSecret = await wallet.renewKey({ secretKey: bs58.encode(other.secretKey) });
    const fromFile = await wallet.renewKey({ keypairFile: otherFile });
    for (const refused of [fromSecret, fromFile]) {
      expect(refused.outcome).toBe('refused');
      const reason = 'reason' in refused ? refused.reason : '';
      expect(reason).toContain(other.publicKey.toBase58());
      expect(reason).toMatch(/needs a restart/);
    }
    const errors = logged(setup.lines, 50, /a restart is needed to switch wallets/);
    expect(errors).toHaveLength(2);

    expect(wallet.service.address).toBe(address);
    expect(await setup.running.say('owner', '/wallet address')).toContain(address);
    expect(await setup.send()).toMatch(/confirmed|finalized/);
    expect(await w.solana.balance(w.friend.publicKey)).toBe(100_000_000n);
    expect(await w.solana.balance(other.publicKey)).toBe(0n);

    // This wallet's own key from another source is taken: same address, so the same wallet.
    expect(await wallet.renewKey({ secretKey: JSON.stringify([...w.wallet.secretKey]) })).toEqual({
      outcome: 'renewed',
    });
    expect(await setup.send()).toMatch(/confirmed|finalized/);
    expectNoSecret(
      [...setup.lines, JSON.stringify(fromSecret), JSON.stringify(fromFile)],
      secretsOf(w.wallet, other),
    );
  });
});

describe('the renewable signer and its renewal', () => {
  it('never takes a key for another address', async () => {
    const own = Keypair.generate();
    const signer = new RenewableSigner(new Ed25519Signer(own.secretKey));
    expect(() => signer.replace(new Ed25519Signer(Keypair.generate().secretKey))).toThrow(/not this wallet/);
    expect(await signer.publicKey()).toBe(own.publicKey.toBase58());
    signer.replace(new Ed25519Signer(own.secretKey));
    expect(String(signer)).toBe(`RenewableSigner(${own.publicKey.toBase58()})`);
  });

  it('keeps the key on an unexpected load failure without passing its message on', async () => {
    const own = Keypair.generate();
    const lines: string[] = [];
    const renew = keyRenewal({
      key: { secretKey: bs58.encode(own.secretKey) },
      signer: new RenewableSigner(new Ed25519Signer(own.secretKey)),
      logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(line) }),
      load: async (key) => {
        throw new Error(`boom near ${key.secretKey}`);
      },
    });
    const result = await renew({ secretKey: NEW_PASSPHRASE });
    expect(result).toEqual({
      outcome: 'kept',
      reason: expect.stringContaining('wallet.key.secretKey (WALLET_SECRET_KEY) changed'),
    });
    expectNoSecret([...lines, JSON.stringify(result)], secretsOf(own));
  });
});
