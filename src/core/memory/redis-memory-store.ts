import type { Redis } from 'ioredis';
import type { CommitInput, EventClaim, MemoryEntry, MemoryStore, Turn } from './memory-store.js';
import { turnsSinceReset } from './memory-store.js';

/**
 * KEYS[1] the person's memory list, KEYS[2] the event's dedupe key
 * ARGV[1] entries to append, as a JSON array of JSON strings (may be empty: command replies)
 * ARGV[2] how many entries to retain, ARGV[3] the reply, ARGV[4] dedupe TTL in seconds
 * Returns the list's new length. Append, trim and "answered" happen atomically, so a crash
 * never leaves a stored turn whose event could be answered again, or the reverse.
 */
const COMMIT_SCRIPT = `
local entries = cjson.decode(ARGV[1])
for i = 1, #entries do
  redis.call('RPUSH', KEYS[1], entries[i])
end
local length = redis.call('LLEN', KEYS[1])
if #entries > 0 then
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
end
redis.call('SET', KEYS[2], 'done:' .. ARGV[3], 'EX', tonumber(ARGV[4]))
return length
`;

const IN_PROGRESS = 'pending';

export interface RedisMemoryStoreOptions {
  redis: Redis;
  keyPrefix: string;
  retainTurns: number;
  dedupeTtlSeconds: number;
  /** How long a claim may stay unanswered before another attempt may take it. */
  claimTtlMs: number;
}

/** Shared memory: every process pointed at the same Redis sees the same conversations. */
export class RedisMemoryStore implements MemoryStore {
  readonly backend = 'redis' as const;

  constructor(private readonly options: RedisMemoryStoreOptions) {
    options.redis.defineCommand('agentCommit', { numberOfKeys: 2, lua: COMMIT_SCRIPT });
  }

  async open(): Promise<void> {}

  async claimEvent(eventKey: string): Promise<EventClaim> {
    const key = this.eventKey(eventKey);
    const set = await this.options.redis.set(key, IN_PROGRESS, 'PX', this.options.claimTtlMs, 'NX');
    if (set === 'OK') return { status: 'claimed' };
    const value = await this.options.redis.get(key);
    if (value === null) return this.claimEvent(eventKey); // expired between the two calls
    if (value === IN_PROGRESS) return { status: 'in_progress' };
    return { status: 'answered', reply: value.slice('done:'.length) };
  }

  async releaseEvent(eventKey: string): Promise<void> {
    const key = this.eventKey(eventKey);
    // Only a pending claim is released; an answered event stays answered.
    await this.options.redis.eval(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
      1,
      key,
      IN_PROGRESS,
    );
  }

  async commit(input: CommitInput): Promise<void> {
    const entries: MemoryEntry[] = [];
    if (input.reset) entries.push(input.reset);
    if (input.turn) entries.push(input.turn);
    const personId = input.turn?.personId ?? input.reset?.personId ?? '';
    const redis = this.options.redis as Redis & {
      agentCommit(k1: string, k2: string, a1: string, a2: number, a3: string, a4: number): Promise<number>;
    };
    await redis.agentCommit(
      this.memoryKey(personId),
      this.eventKey(input.eventKey),
      JSON.stringify(entries.map((e) => JSON.stringify(e))),
      this.options.retainTurns,
      input.reply,
      this.options.dedupeTtlSeconds,
    );
  }

  async recentTurns(personId: string, limit: number): Promise<Turn[]> {
    if (limit <= 0) return [];
    // One extra entry is enough to see a reset marker just before the window.
    const raw = await this.options.redis.lrange(this.memoryKey(personId), -(limit + 1), -1);
    return turnsSinceReset(
      raw.map((item) => JSON.parse(item) as MemoryEntry),
      limit,
    );
  }

  async ping(): Promise<void> {
    await this.options.redis.ping();
  }

  async close(): Promise<void> {}

  private memoryKey(personId: string): string {
    return `${this.options.keyPrefix}:mem:${personId}`;
  }

  private eventKey(eventKey: string): string {
    return `${this.options.keyPrefix}:evt:${eventKey}`;
  }
}
