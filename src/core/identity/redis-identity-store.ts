import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ReplyAddress } from '../../channels/channel-adapter.js';
import {
  accountId,
  type IdentityStore,
  newLinkCode,
  normaliseLinkCode,
  type RedeemResult,
  type SeenAddress,
} from './identity-store.js';

export interface SeenRecord {
  address: ReplyAddress;
  at: number;
}

/** KEYS[1] the seen hash; ARGV: account, record, its `at`. Sets unless a newer one is stored. */
const TOUCH_IF_NEWER = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(cjson.decode(current).at) > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/**
 * Links, last-seen addresses and link codes in Redis, shared by every process:
 *   {prefix}:identity:links            hash   account -> person
 *   {prefix}:identity:members:{person} set    accounts linked to the person
 *   {prefix}:identity:seen             hash   account -> {"address":...,"at":...}
 *   {prefix}:identity:code:{code}      string person, expiring; GETDEL makes it single-use
 */
export class RedisIdentityStore implements IdentityStore {
  readonly backend = 'redis' as const;
  private readonly key: string;

  constructor(private readonly options: { redis: Redis; keyPrefix: string }) {
    this.key = `${options.keyPrefix}:identity`;
  }

  async open(): Promise<void> {}

  async close(): Promise<void> {}

  async resolve(channel: string, userId: string): Promise<string> {
    const account = accountId(channel, userId);
    return (await this.options.redis.hget(`${this.key}:links`, account)) ?? account;
  }

  async issueLinkCode(personId: string, ttlMs: number): Promise<string> {
    for (;;) {
      const code = newLinkCode(randomBytes);
      const set = await this.options.redis.set(`${this.key}:code:${code}`, personId, 'PX', ttlMs, 'NX');
      if (set === 'OK') return code;
    }
  }

  async redeemLinkCode(input: string, channel: string, userId: string): Promise<RedeemResult> {
    const { redis } = this.options;
    const personId = await redis.getdel(`${this.key}:code:${normaliseLinkCode(input)}`);
    if (personId === null) return { status: 'invalid_code' };
    const account = accountId(channel, userId);
    const previousPersonId = await this.resolve(channel, userId);
    if (previousPersonId === personId) return { status: 'already_linked', personId };
    await redis
      .multi()
      .hset(`${this.key}:links`, account, personId)
      .srem(`${this.key}:members:${previousPersonId}`, account)
      .sadd(`${this.key}:members:${personId}`, account)
      .exec();
    return { status: 'linked', personId, previousPersonId };
  }

  async unlink(channel: string, userId: string): Promise<boolean> {
    const { redis } = this.options;
    const account = accountId(channel, userId);
    const personId = await redis.hget(`${this.key}:links`, account);
    if (personId === null) return false;
    await redis
      .multi()
      .hdel(`${this.key}:links`, account)
      .srem(`${this.key}:members:${personId}`, account)
      .exec();
    return true;
  }

  async touch(channel: string, userId: string, address: ReplyAddress, at: number): Promise<void> {
    await this.options.redis.hset(
      `${this.key}:seen`,
      accountId(channel, userId),
      JSON.stringify({ address, at }),
    );
  }

  /**
   * A `touch` made while Redis was unreachable, replayed from the write-ahead log: stored only if
   * it is newer than what Redis has, so an old replay never hides a newer address.
   */
  async replayTouch(channel: string, userId: string, address: ReplyAddress, at: number): Promise<void> {
    await this.options.redis.eval(
      TOUCH_IF_NEWER,
      1,
      `${this.key}:seen`,
      accountId(channel, userId),
      JSON.stringify({ address, at }),
      at,
    );
  }

  /** Every link (account -> person) and last-seen address, for the local snapshot. */
  async exportAll(): Promise<{ links: Record<string, string>; seen: Record<string, SeenRecord> }> {
    const [links, seen] = await Promise.all([
      this.options.redis.hgetall(`${this.key}:links`),
      this.options.redis.hgetall(`${this.key}:seen`),
    ]);
    return {
      links,
      seen: Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, JSON.parse(v) as SeenRecord])),
    };
  }

  async addresses(personId: string): Promise<SeenAddress[]> {
    const { redis } = this.options;
    const members = await redis.smembers(`${this.key}:members:${personId}`);
    // The person's own account, unless it was linked away to another person since.
    const own = await redis.hget(`${this.key}:links`, personId);
    const accounts = own === null ? [personId, ...members] : members;
    if (accounts.length === 0) return [];
    const values = await redis.hmget(`${this.key}:seen`, ...accounts);
    const found: SeenAddress[] = [];
    accounts.forEach((account, i) => {
      const value = values[i];
      if (!value) return;
      const seen = JSON.parse(value) as { address: ReplyAddress; at: number };
      found.push({ account, address: seen.address, at: seen.at });
    });
    return found.sort((a, b) => b.at - a.at);
  }
}
