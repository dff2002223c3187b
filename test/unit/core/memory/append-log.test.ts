import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppendLog, encodeRecord } from '../../../../src/core/memory/append-log.js';

const logPath = () => join(mkdtempSync(join(tmpdir(), 'agent-log-')), 'memory.log');

describe('AppendLog', () => {
  it('reads back what it appended, after a reopen', async () => {
    const path = logPath();
    const log = new AppendLog<{ n: number }>(path);
    expect(log.open().records).toEqual([]);
    await log.append({ n: 1 });
    await log.appendMany([{ n: 2 }, { n: 3 }]);
    await log.close();
    const reopened = new AppendLog<{ n: number }>(path).open();
    expect(reopened.records).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(reopened.skipped).toBe(0);
  });

  it('keeps concurrent appends from one process whole and in call order', async () => {
    const path = logPath();
    const log = new AppendLog<{ n: number; pad: string }>(path);
    log.open();
    const pad = 'x'.repeat(5000); // larger than a pipe buffer, to expose interleaving
    await Promise.all(Array.from({ length: 300 }, (_, n) => log.append({ n, pad })));
    await log.close();
    const loaded = new AppendLog<{ n: number }>(path).open();
    expect(loaded.skipped).toBe(0);
    expect(loaded.records.map((r) => r.n)).toEqual(Array.from({ length: 300 }, (_, n) => n));
  });

  it('skips a torn last record, cuts it off, and appends cleanly after it', async () => {
    const path = logPath();
    writeFileSync(path, encodeRecord({ n: 1 }) + encodeRecord({ n: 2 }));
    // A crash in the middle of a write leaves half a line.
    appendFileSync(path, encodeRecord({ n: 3 }).slice(0, 12));
    const log = new AppendLog<{ n: number }>(path);
    const loaded = log.open();
    expect(loaded.records).toEqual([{ n: 1 }, { n: 2 }]);
    expect(loaded).toMatchObject({ skipped: 1, tornTail: true });
    await log.append({ n: 4 });
    await log.close();
    expect(new AppendLog<{ n: number }>(path).open().records).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }]);
  });

  it('detects a complete last line whose checksum does not match', () => {
    const path = logPath();
    const bad = encodeRecord({ n: 2 }).replace('"n":2', '"n":9');
    writeFileSync(path, encodeRecord({ n: 1 }) + bad);
    const log = new AppendLog<{ n: number }>(path);
    expect(log.open()).toMatchObject({ records: [{ n: 1 }], skipped: 1, tornTail: true });
    expect(readFileSync(path, 'utf8')).toBe(encodeRecord({ n: 1 }));
  });

  it('skips a damaged record in the middle but keeps everything after it', () => {
    const path = logPath();
    writeFileSync(path, `${encodeRecord({ n: 1 })}garbage line\n${encodeRecord({ n: 3 })}`);
    const loaded = new AppendLog<{ n: number }>(path).open();
    expect(loaded).toMatchObject({ records: [{ n: 1 }, { n: 3 }], skipped: 1, tornTail: false });
  });

  it('refuses appends after close', async () => {
    const log = new AppendLog(logPath());
    log.open();
    await log.close();
    await expect(log.append({})).rejects.toThrow(/not open/);
  });
});
