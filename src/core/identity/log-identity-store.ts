import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ReplyAddress } from '../../channels/channel-adapter.js';
import { AppendLog, rewriteLog } from '../memory/append-log.js';
import {
  accountId,
  type IdentityStore,
  newLinkCode,
  normaliseLinkCode,
  type RedeemResult,
  type SeenAddress,
} from './identity-store.js';

type IdentityRecord =
  | { t: 'link'; account: string; personId: string; at: number }
  | { t: 'unlink'; account: string; at: number }
  | { t: 'seen'; account: string; address: ReplyAddress; at: number };

/** A changed address is written at once; the same one at most this often. */
const SEEN_WRITE_EVERY_MS = 60_000;

/**
 * Links and last-seen addresses in `data/identity.log` (embedded mode, one process). Link codes
 * live in memory only: they are good for ten minutes, and a restart simply asks for a new one.
 */
export class LogIdentityStore implements IdentityStore {
  readonly backend = 'log' as const;
  private readonly path: string;
  private log: AppendLog<IdentityRecord>;
  private readonly links = new Map<string, string>();
  private readonly seen = new Map<string, { address: ReplyAddress; at: number; writtenAt: number }>();
  private readonly codes = new Map<string, { personId: string; expiresAt: number }>();

  constructor(private readonly options: { dataDir: string; logger: Logger; now?: () => number }) {
    this.path = join(options.dataDir, 'identity.log');
    this.log = new AppendLog(this.path);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  async open(): Promise<void> {
    const loaded = this.log.open();
    if (loaded.skipped > 0)
      this.options.logger.warn({ path: this.path, ...loaded }, 'identity log: skipped bad records');
    for (const record of loaded.records) this.apply(record);
    if (loaded.records.length > 2 * (this.links.size + this.seen.size) + 100) {
      await this.log.close();
      try {
        rewriteLog(this.path, this.snapshotRecords());
      } catch (error) {
        this.options.logger.warn({ err: error }, 'identity log: compaction failed');
      }
      this.log = new AppendLog(this.path);
      this.log.open();
    }
  }

  async close(): Promise<void> {
    await this.log.close();
  }

  async resolve(channel: string, userId: string): Promise<string> {
    const account = accountId(channel, userId);
    return this.links.get(account) ?? account;
  }

  async issueLinkCode(personId: string, ttlMs: number): Promise<string> {
    const now = this.now();
    for (const [code, entry] of this.codes) if (entry.expiresAt <= now) this.codes.delete(code);
    let code = newLinkCode(randomBytes);
    while (this.codes.has(code)) code = newLinkCode(randomBytes);
    this.codes.set(code, { personId, expiresAt: now + ttlMs });
    return code;
  }

  async redeemLinkCode(input: string, channel: string, userId: string): Promise<RedeemResult> {
    const code = normaliseLinkCode(input);
    const entry = this.codes.get(code);
    // Used once, whatever happens next.
    this.codes.delete(code);
    if (!entry || entry.expiresAt <= this.now()) return { status: 'invalid_code' };
    const account = accountId(channel, userId);
    const previousPersonId = await this.resolve(channel, userId);
    if (previousPersonId === entry.personId) return { status: 'already_linked', personId: entry.personId };
    await this.write({ t: 'link', account, personId: entry.personId, at: this.now() });
    return { status: 'linked', personId: entry.personId, previousPersonId };
  }

  async unlink(channel: string, userId: string): Promise<boolean> {
    const account = accountId(channel, userId);
    if (!this.links.has(account)) return false;
    await this.write({ t: 'unlink', account, at: this.now() });
    return true;
  }

  async touch(channel: string, userId: string, address: ReplyAddress, at: number): Promise<void> {
    const account = accountId(channel, userId);
    const last = this.seen.get(account);
    const changed = !last || JSON.stringify(last.address) !== JSON.stringify(address);
    if (!changed && at - last.writtenAt < SEEN_WRITE_EVERY_MS) {
      last.at = Math.max(last.at, at);
      return;
    }
    await this.write({ t: 'seen', account, address, at });
  }

  async addresses(personId: string): Promise<SeenAddress[]> {
    const found: SeenAddress[] = [];
    for (const [account, seen] of this.seen) {
      if ((this.links.get(account) ?? account) === personId)
        found.push({ account, address: seen.address, at: seen.at });
    }
    return found.sort((a, b) => b.at - a.at);
  }

  private async write(record: IdentityRecord): Promise<void> {
    await this.log.append(record);
    this.apply(record);
  }

  private apply(record: IdentityRecord): void {
    if (record.t === 'link') this.links.set(record.account, record.personId);
    else if (record.t === 'unlink') this.links.delete(record.account);
    else this.seen.set(record.account, { address: record.address, at: record.at, writtenAt: record.at });
  }

  private snapshotRecords(): IdentityRecord[] {
    const records: IdentityRecord[] = [];
    const at = this.now();
    for (const [account, personId] of this.links) records.push({ t: 'link', account, personId, at });
    for (const [account, seen] of this.seen)
      records.push({ t: 'seen', account, address: seen.address, at: seen.at });
    return records;
  }
}
