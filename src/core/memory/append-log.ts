import {
  closeSync,
  fdatasync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  write,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';

const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);

/**
 * A durable append-only log of JSON records, one per line: `<crc32 hex> <json>\n`.
 *
 * - `append()` resolves only after the record is written and fsync'd.
 * - Appends that arrive while a write is in progress are batched into the next write, so one
 *   fsync covers many records (group commit) and records never interleave.
 * - On open, a torn last record (a crash mid-write) is detected by its missing newline or bad
 *   checksum, reported, and cut off so later appends start on a clean line.
 */
export interface LoadedLog<T> {
  records: T[];
  /** Records that failed their checksum or did not parse; the last one is a torn write. */
  skipped: number;
  tornTail: boolean;
}

interface PendingAppend {
  line: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class AppendLog<T> {
  private fd: number | undefined;
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(readonly path: string) {}

  /** Reads every intact record and opens the file for appending. */
  open(): LoadedLog<T> {
    mkdirSync(dirname(this.path), { recursive: true });
    let data = Buffer.alloc(0);
    try {
      data = readFileSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const loaded = parseLog<T>(data);
    this.fd = openSync(this.path, 'a+');
    if (loaded.validBytes < data.length) {
      // Cut the torn tail so the next record does not glue onto half a line.
      ftruncateSync(this.fd, loaded.validBytes);
      fsyncSync(this.fd);
    }
    return { records: loaded.records, skipped: loaded.skipped, tornTail: loaded.tornTail };
  }

  append(record: T): Promise<void> {
    return this.appendMany([record]);
  }

  /** Appends several records that must land together, in one write. */
  appendMany(records: readonly T[]): Promise<void> {
    if (this.closed || this.fd === undefined)
      return Promise.reject(new Error(`append log ${this.path} is not open`));
    const line = records.map(encodeRecord).join('');
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    // Yield once so appends issued in the same tick join this batch.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const buffer = Buffer.from(batch.map((p) => p.line).join(''));
        let offset = 0;
        while (offset < buffer.length) {
          const { bytesWritten } = await writeAsync(
            this.fd as number,
            buffer,
            offset,
            buffer.length - offset,
          );
          offset += bytesWritten;
        }
        // Asynchronous, so the event loop keeps serving (and forming the next batch) meanwhile.
        await fdatasyncAsync(this.fd as number);
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error as Error);
      }
    }
    this.flushing = undefined;
  }

  /** Waits for queued appends, then closes the file. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.closed = true;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Replaces the log at `path` with exactly `records`. A crash at any point leaves either the old
 * log or the new one, both complete. The log must not be open for appending meanwhile.
 */
export function rewriteLog(path: string, records: readonly unknown[]): void {
  writeFileAtomically(path, records.map(encodeRecord).join(''));
}

/**
 * Writes `text` to a scratch file, fsyncs it, renames it over `path` and fsyncs the directory:
 * a crash at any point leaves the old file or the new one, never a part.
 */
export function writeFileAtomically(path: string, text: string, mode = 0o644): void {
  const scratch = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(scratch, 'w', mode);
    try {
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(scratch, path);
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (error) {
    rmSync(scratch, { force: true });
    throw error;
  }
}

export function encodeRecord(record: unknown): string {
  const json = JSON.stringify(record);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

function parseLog<T>(data: Buffer): { records: T[]; skipped: number; tornTail: boolean; validBytes: number } {
  const records: T[] = [];
  let skipped = 0;
  let start = 0;
  /** Byte offset just after the last intact record: everything after it is a torn tail. */
  let validBytes = 0;
  let lastLineBad = false;
  while (start < data.length) {
    let end = data.indexOf(0x0a, start);
    // No newline: the process died during this write.
    const complete = end !== -1;
    if (!complete) end = data.length;
    const record = complete ? decodeLine<T>(data.toString('utf8', start, end)) : undefined;
    if (record === undefined) {
      skipped += 1;
      lastLineBad = true;
    } else {
      records.push(record);
      validBytes = end + 1;
      lastLineBad = false;
    }
    start = end + 1;
  }
  return { records, skipped, tornTail: lastLineBad, validBytes: lastLineBad ? validBytes : data.length };
}

function decodeLine<T>(line: string): T | undefined {
  const space = line.indexOf(' ');
  if (space !== 8) return undefined;
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return undefined;
  try {
    return JSON.parse(json) as T;
  } catch {
    return undefined;
  }
}
