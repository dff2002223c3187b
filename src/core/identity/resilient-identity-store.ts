import type { ReplyAddress } from '../../channels/channel-adapter.js';
import { AgentError } from '../errors.js';
import type { RedisReachability } from '../redis/redis-reachability.js';
import type { WalRecord, WriteAheadLog } from '../redis/write-ahead-log.js';
import { accountId, type IdentityStore, type RedeemResult, type SeenAddress } from './identity-store.js';
import type { RedisIdentityStore, SeenRecord } from './redis-identity-store.js';

/** What the snapshot job saves of identities. */
export interface IdentityMirrorState {
  links: Record<string, string>;
  seen: Record<string, SeenRecord>;
}

interface TouchData {
  channel: string;
  userId: string;
  address: ReplyAddress;
  at: number;
}

const TOUCH = 'identity.touch';

/**
 * Identities in Redis that keep serving while Redis is unreachable: links and last-seen
 * addresses are mirrored locally from every read and write (and from the snapshot job), reads
 * fall back to the mirror, and `touch` goes through the write-ahead log. Linking and unlinking
 * accounts need Redis (a code issued on one node is redeemed on another): while it is away they
 * fail with `memory_unavailable`, which platforms retry once it is back.
 */
export class ResilientIdentityStore implements IdentityStore {
  readonly backend = 'redis' as const;
  private readonly links = new Map<string, string>();
  private readonly seen = new Map<string, SeenRecord>();

  constructor(
    private readonly options: {
      inner: RedisIdentityStore;
      wal: WriteAheadLog;
      reachability: RedisReachability;
    },
  ) {
    options.wal.handle(TOUCH, (record) => {
      const data = record.data as TouchData;
      return options.inner.replayTouch(data.channel, data.userId, data.address, data.at);
    });
  }

  async open(): Promise<void> {
    await this.options.inner.open();
  }

  async close(): Promise<void> {
    await this.options.inner.close();
  }

  restorePending(records: readonly WalRecord[]): void {
    for (const record of records) {
      if (record.kind !== TOUCH) continue;
      const data = record.data as TouchData;
      this.seeAt(accountId(data.channel, data.userId), { address: data.address, at: data.at });
    }
  }

  async resolve(channel: string, userId: string): Promise<string> {
    const account = accountId(channel, userId);
    if (this.options.reachability.reachable) {
      const read = await this.options.reachability.attempt(() => this.options.inner.resolve(channel, userId));
      if (read.ok) {
        if (read.value === account) this.links.delete(account);
        else this.links.set(account, read.value);
        return read.value;
      }
    }
    return this.links.get(account) ?? account;
  }

  issueLinkCode(personId: string, ttlMs: number): Promise<string> {
    return this.needsRedis(() => this.options.inner.issueLinkCode(personId, ttlMs));
  }

  async redeemLinkCode(code: string, channel: string, userId: string): Promise<RedeemResult> {
    const result = await this.needsRedis(() => this.options.inner.redeemLinkCode(code, channel, userId));
    if (result.status === 'linked') this.links.set(accountId(channel, userId), result.personId);
    return result;
  }

  async unlink(channel: string, userId: string): Promise<boolean> {
    const unlinked = await this.needsRedis(() => this.options.inner.unlink(channel, userId));
    this.links.delete(accountId(channel, userId));
    return unlinked;
  }

  async touch(channel: string, userId: string, address: ReplyAddress, at: number): Promise<void> {
    const { wal, inner, reachability } = this.options;
    if (!wal.engaged && (await reachability.attempt(() => inner.touch(channel, userId, address, at))).ok) {
      this.seeAt(accountId(channel, userId), { address, at });
      return;
    }
    await wal.append(TOUCH, { channel, userId, address, at } satisfies TouchData);
    this.seeAt(accountId(channel, userId), { address, at });
  }

  async addresses(personId: string): Promise<SeenAddress[]> {
    if (!this.options.wal.engaged) {
      const read = await this.options.reachability.attempt(() => this.options.inner.addresses(personId));
      if (read.ok) {
        for (const seen of read.value) this.seeAt(seen.account, { address: seen.address, at: seen.at });
        return read.value;
      }
    }
    const accounts = [...this.links].filter(([, person]) => person === personId).map(([account]) => account);
    // The person's own account, unless it was linked away to another person.
    if (!this.links.has(personId)) accounts.unshift(personId);
    return accounts
      .flatMap((account) => {
        const seen = this.seen.get(account);
        return seen ? [{ account, address: seen.address, at: seen.at }] : [];
      })
      .sort((a, b) => b.at - a.at);
  }

  exportMirror(): IdentityMirrorState {
    return { links: Object.fromEntries(this.links), seen: Object.fromEntries(this.seen) };
  }

  /** Loads links and addresses read from Redis (the snapshot job) or from a snapshot file. */
  importMirror(state: IdentityMirrorState, options: { replace?: boolean } = {}): void {
    if (options.replace) this.links.clear();
    for (const [account, person] of Object.entries(state.links)) this.links.set(account, person);
    for (const [account, seen] of Object.entries(state.seen)) this.seeAt(account, seen);
  }

  private seeAt(account: string, record: SeenRecord): void {
    const current = this.seen.get(account);
    if (!current || current.at <= record.at) this.seen.set(account, record);
  }

  private async needsRedis<T>(operation: () => Promise<T>): Promise<T> {
    try {
      if (!this.options.reachability.reachable) throw new Error('Connection is closed.');
      return await operation();
    } catch (error) {
      if (!this.options.reachability.noteFailure(error) && this.options.reachability.reachable) throw error;
      throw new AgentError(
        'memory_unavailable',
        'linking accounts needs Redis, which is unreachable; try again in a moment',
        { cause: error },
      );
    }
  }
}
