import { open } from 'node:fs/promises';
import { WalletKeyError } from './wallet-key-error.js';

/**
 * Reads a file holding key material, refusing it when group or others may read or write it: a
 * key another user could read is already leaked, and one they could write could be swapped for
 * theirs. The mode is checked on the open handle, so the file checked is the file read.
 */
export async function readPrivateFile(path: string, what: string): Promise<Buffer> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw unreadable(path, what, error);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new WalletKeyError(
        'wallet_key_unreadable',
        path,
        `the ${what} is not a regular file`,
        `point the wallet at the ${what} itself`,
      );
    }
    // Windows has no POSIX mode bits (files report 0o666), so the check means nothing there.
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      throw new WalletKeyError(
        'wallet_key_insecure',
        path,
        `the ${what} is readable or writable by group or others (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')})`,
        `chmod 600 ${path}`,
      );
    }
    return await handle.readFile();
  } catch (error) {
    if (error instanceof WalletKeyError) throw error;
    throw unreadable(path, what, error);
  } finally {
    await handle.close();
  }
}

function unreadable(path: string, what: string, error: unknown): WalletKeyError {
  const reason = (error as NodeJS.ErrnoException).code ?? 'unknown error';
  return new WalletKeyError(
    'wallet_key_unreadable',
    path,
    `cannot read the ${what} (${reason})`,
    `check the path and that the agent's user owns the file`,
  );
}
