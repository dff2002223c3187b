import { access, readFile, writeFile } from 'node:fs/promises';
import { Ed25519Signer } from './ed25519-signer.js';
import { encryptKeystore, parseKeystore } from './encrypted-keystore.js';
import { keypairFromJson, readKeypairFile } from './keypair-file.js';
import { readPrivateFile } from './private-file.js';
import { parseJsonQuietly } from './secret-key-bytes.js';
import { isWalletKeyError, WalletKeyError } from './wallet-key-error.js';

export interface KeystoreCommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

const USAGE = `usage:
  keystore create <keypair.json> <out.json>   encrypt a solana-keygen keypair file into a keystore
                                              (passphrase from WALLET_KEYSTORE_PASSPHRASE or
                                              WALLET_KEYSTORE_PASSPHRASE_FILE)
  keystore address <file>                     print the public key of a keypair file or keystore
`;

/** A failure the operator can fix from its message alone, so no stack trace. */
class CommandError extends Error {}

/**
 * The `keystore` subcommands. `argv` holds the words after `keystore` (`['create', in, out]`).
 * Returns the exit code: 0 done, 1 failed, 2 bad usage.
 */
export async function runKeystoreCommand(
  argv: string[],
  env: Record<string, string | undefined>,
  io: KeystoreCommandIo,
): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command === 'create' && args.length === 2) {
      await create(args[0] as string, args[1] as string, env, io);
      return 0;
    }
    if (command === 'address' && args.length === 1) {
      io.stdout.write(`${await address(args[0] as string)}\n`);
      return 0;
    }
    io.stderr.write(USAGE);
    return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  } catch (error) {
    if (error instanceof CommandError || error instanceof RangeError || isWalletKeyError(error)) {
      io.stderr.write(`keystore ${command}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

async function create(
  input: string,
  output: string,
  env: Record<string, string | undefined>,
  io: KeystoreCommandIo,
): Promise<void> {
  // Fail before the slow key derivation; the exclusive write below is what actually guarantees it.
  if (await exists(output)) throw refuseOverwrite(output);
  const passphrase = await readPassphrase(env);
  const secretKey = await readKeypairFile(input);
  let keystore: Awaited<ReturnType<typeof encryptKeystore>>;
  try {
    keystore = await encryptKeystore(secretKey, passphrase);
  } finally {
    secretKey.fill(0);
  }
  try {
    await writeFile(output, `${JSON.stringify(keystore, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw refuseOverwrite(output);
    throw new CommandError(`cannot write ${output} (${code ?? String(error)})`);
  }
  io.stdout.write(`wrote ${output} (mode 600) for wallet ${keystore.publicKey}\n`);
}

/** The public key of a keypair file or keystore; a keystore keeps it in clear, so no passphrase. */
async function address(path: string): Promise<string> {
  const raw = await readPrivateFile(path, 'key file');
  try {
    const value = parseJsonQuietly(raw.toString('utf8'));
    if (Array.isArray(value)) {
      const secretKey = keypairFromJson(value, path);
      try {
        return new Ed25519Signer(secretKey, { source: path }).address;
      } finally {
        secretKey.fill(0);
      }
    }
    if (typeof value === 'object' && value !== null) return parseKeystore(value, path).publicKey;
    throw new WalletKeyError(
      'wallet_key_invalid',
      path,
      'neither a Solana keypair file nor a wallet keystore',
      'check the path',
    );
  } finally {
    raw.fill(0);
  }
}

async function readPassphrase(env: Record<string, string | undefined>): Promise<string> {
  const direct = env.WALLET_KEYSTORE_PASSPHRASE;
  const file = env.WALLET_KEYSTORE_PASSPHRASE_FILE;
  if (direct !== undefined && file !== undefined) {
    throw new CommandError(
      'WALLET_KEYSTORE_PASSPHRASE and WALLET_KEYSTORE_PASSPHRASE_FILE are both set; set only one',
    );
  }
  if (file !== undefined) {
    try {
      // Secret files usually end with a newline that is not part of the secret.
      return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (error) {
      throw new CommandError(
        `cannot read WALLET_KEYSTORE_PASSPHRASE_FILE ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
    }
  }
  if (direct === undefined || direct === '') {
    throw new CommandError(
      'no passphrase: set WALLET_KEYSTORE_PASSPHRASE, or WALLET_KEYSTORE_PASSPHRASE_FILE to a file holding it',
    );
  }
  return direct;
}

function refuseOverwrite(path: string): CommandError {
  return new CommandError(`${path} already exists; refusing to overwrite it (choose another path)`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
