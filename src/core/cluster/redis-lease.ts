import type { Redis } from 'ioredis';

/** Who holds a lease, as stored in Redis. */
export interface LeaseHolder {
  node: string;
  /** One process of that node (a restarted process is a new instance). */
  instance: string;
  /** Increases with every acquisition: a smaller token is an older, superseded term. */
  fence: number;
  /** Epoch ms when this term began. */
  since: number;
}

/** One holder's term: its record, and the exact stored string the scripts compare against. */
export interface LeaseTerm {
  holder: LeaseHolder;
  record: string;
}

/** Acquired: this term. Held elsewhere: how long before it may expire. */
export type AcquireResult = { acquired: true; term: LeaseTerm } | { acquired: false; expiresInMs: number };

// KEYS[1] the lease, KEYS[2] its fence counter. ARGV: node, instance, ttl ms, now.
// The fence is taken from the counter only when the lease is free, so terms are totally ordered.
const ACQUIRE = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl ~= -2 then return {0, ttl} end
local fence = redis.call('INCR', KEYS[2])
local value = cjson.encode({node = ARGV[1], instance = ARGV[2], fence = fence, since = tonumber(ARGV[4])})
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return {1, value}
`;

// KEYS[1] the lease, KEYS[2] its fence counter. ARGV: our record, ttl ms, our fence.
// Extends our term. If the key vanished (Redis restarted from an AOF after the TTL ran out) and
// nobody acquired since (the counter still shows our fence), the term is restored rather than lost.
const RENEW = `
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not value and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

// KEYS[1] the lease. ARGV: our record, the channel to announce on, the lease name.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`;

/**
 * One named lease in Redis with a fencing token. Every operation is one Lua script, so checking
 * the holder and changing the key are a single step even with two servers racing.
 */
export class RedisLease {
  readonly key: string;
  private readonly fenceKey: string;

  constructor(
    private readonly redis: Redis,
    readonly name: string,
    private readonly options: { keyPrefix: string; ttlMs: number; releasedChannel: string },
  ) {
    this.key = `${options.keyPrefix}:lease:${name}`;
    this.fenceKey = `${options.keyPrefix}:lease:${name}:fence`;
  }

  async acquire(node: string, instance: string, now: number): Promise<AcquireResult> {
    const [ok, detail] = (await this.redis.eval(
      ACQUIRE,
      2,
      this.key,
      this.fenceKey,
      node,
      instance,
      this.options.ttlMs,
      now,
    )) as [number, number | string];
    if (ok === 1) {
      const record = detail as string;
      return { acquired: true, term: { holder: JSON.parse(record) as LeaseHolder, record } };
    }
    // -1 (no expiry) cannot happen for our keys; treat it as a full term.
    const ttl = Number(detail);
    return { acquired: false, expiresInMs: ttl >= 0 ? ttl : this.options.ttlMs };
  }

  /** True while `term` still holds the lease (extended by one TTL); false once it was lost. */
  async renew(term: LeaseTerm): Promise<boolean> {
    const result = await this.redis.eval(
      RENEW,
      2,
      this.key,
      this.fenceKey,
      term.record,
      this.options.ttlMs,
      String(term.holder.fence),
    );
    return result === 1;
  }

  /** The fencing check: true only if `term` is the current holder. */
  async confirm(term: LeaseTerm): Promise<boolean> {
    return (await this.redis.get(this.key)) === term.record;
  }

  /** Gives the lease up (only if still ours) and tells the other nodes, so one takes it at once. */
  async release(term: LeaseTerm): Promise<boolean> {
    const result = await this.redis.eval(
      RELEASE,
      1,
      this.key,
      term.record,
      this.options.releasedChannel,
      this.name,
    );
    return result === 1;
  }

  async holder(): Promise<LeaseHolder | undefined> {
    const value = await this.redis.get(this.key);
    return value ? (JSON.parse(value) as LeaseHolder) : undefined;
  }
}
