import type { Redis } from 'ioredis';
import type {
  CommitInput,
  EventClaim,
  MemoryEntry,
  MemoryStore,
  MemorySummary,
  Turn,
} from './memory-store.js';
import { turnsSinceReset } from './memory-store.js';

/**
 * KEYS[1] the person's memory list, KEYS[2] the event's dedupe key,
 * KEYS[3] the compaction candidates (sorted set), KEYS[4] the person's summary
 * ARGV[1] entries to append, as a JSON array of JSON strings (may be empty: command replies)
 * ARGV[2] how many entries to retain, ARGV[3] the reply, ARGV[4] dedupe TTL in seconds,
 * ARGV[5] the new turn's `at` ("" without a turn), ARGV[6] the person id,
 * ARGV[7] "1" when the entries include a reset marker
 * ARGV[8] "1" for a replay from the write-ahead log: nothing happens (-1) when the event is
 *         already answered, so a record replayed twice is stored once
 * Returns the list's new length. Append, trim and "answered" happen atomically, so a crash
 * never leaves a stored turn whose event could be answered again, or the reverse. A new turn
 * makes the person a compaction candidate (scored by the turn's time); a reset drops their
 * summary.
 */
const COMMIT_SCRIPT = `
if ARGV[8] == '1' then
  local current = redis.call('GET', KEYS[2])
  if current and string.sub(current, 1, 5) == 'done:' then return -1 end
end
local entries = cjson.decode(ARGV[1])
for i = 1, #entries do
  redis.call('RPUSH', KEYS[1], entries[i])
end
local length = redis.call('LLEN', KEYS[1])
if #entries > 0 then
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
end
redis.call('SET', KEYS[2], 'done:' .. ARGV[3], 'EX', tonumber(ARGV[4]))
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
end
if ARGV[7] == '1' then
  redis.call('DEL', KEYS[4])
end
return length
`;

/**
 * KEYS[1] the person's memory list, KEYS[2] the person's summary
 * ARGV[1] the summary as JSON, ARGV[2] the `at` of the newest turn it covers
 * Returns 1 when the summary is stored, or 0 (nothing changed) when it would be stale: a reset
 * came after that turn, the turn is no longer stored, or a summary reaching as far exists.
 * Walks the list from its newest entry, 64 at a time, only as far as that turn.
 */
const SAVE_SUMMARY_SCRIPT = `
local upTo = tonumber(ARGV[2])
local current = redis.call('GET', KEYS[2])
if current and tonumber(cjson.decode(current).upToTurnAt) >= upTo then return 0 end
local length = redis.call('LLEN', KEYS[1])
local offset = 0
while offset < length do
  local chunk = redis.call('LRANGE', KEYS[1], -(offset + 64), -(offset + 1))
  for i = #chunk, 1, -1 do
    local entry = cjson.decode(chunk[i])
    if entry.reset then
      if tonumber(entry.at) >= upTo then return 0 end
    elseif tonumber(entry.at) <= upTo then
      redis.call('SET', KEYS[2], ARGV[1])
      return 1
    end
  end
  offset = offset + 64
end
return 0
`;

/**
 * KEYS[1] the compaction candidates, ARGV[1] a person id, ARGV[2] the score it was read with
 * Removes the person unless a newer turn re-scored them since. Returns 1 when removed.
 */
const FORGET_CANDIDATE_SCRIPT = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`;

/** Candidates examined per `personsToCompact` call; the rest wait for the next one. */
const CANDIDATES_PER_CALL = 1000;

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
    options.redis.defineCommand('agentCommit', { numberOfKeys: 4, lua: COMMIT_SCRIPT });
    options.redis.defineCommand('agentSaveSummary', { numberOfKeys: 2, lua: SAVE_SUMMARY_SCRIPT });
    options.redis.defineCommand('agentForgetCandidate', { numberOfKeys: 1, lua: FORGET_CANDIDATE_SCRIPT });
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

  keepClaim(eventKey: string): () => void {
    const key = this.eventKey(eventKey);
    const { claimTtlMs } = this.options;
    const timer = setInterval(() => {
      // Extends only a pending claim: once answered, the event key keeps its dedupe TTL.
      this.options.redis
        .eval(
          "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
          1,
          key,
          IN_PROGRESS,
          claimTtlMs,
        )
        .catch(() => {}); // Redis away: the claim may lapse, and a repeat is then answered again.
    }, claimTtlMs / 3);
    timer.unref();
    return () => clearInterval(timer);
  }

  async commit(input: CommitInput): Promise<void> {
    await this.runCommit(input, false);
  }

  /**
   * A commit made while Redis was unreachable, replayed from the write-ahead log: stored only if
   * the event is not answered yet, so replaying it again changes nothing.
   */
  async replayCommit(input: CommitInput): Promise<void> {
    await this.runCommit(input, true);
  }

  private async runCommit(input: CommitInput, replay: boolean): Promise<void> {
    const entries: MemoryEntry[] = [];
    if (input.reset) entries.push(input.reset);
    if (input.turn) entries.push(input.turn);
    const personId = input.turn?.personId ?? input.reset?.personId ?? '';
    await this.scripts.agentCommit(
      this.memoryKey(personId),
      this.eventKey(input.eventKey),
      this.candidatesKey(),
      this.summaryKey(personId),
      JSON.stringify(entries.map((e) => JSON.stringify(e))),
      this.options.retainTurns,
      input.reply,
      this.options.dedupeTtlSeconds,
      input.turn ? input.turn.at : '',
      personId,
      input.reset ? '1' : '0',
      replay ? '1' : '0',
    );
  }

  async summary(personId: string): Promise<MemorySummary | undefined> {
    const raw = await this.options.redis.get(this.summaryKey(personId));
    return raw === null ? undefined : (JSON.parse(raw) as MemorySummary);
  }

  async saveSummary(personId: string, text: string, upToTurnAt: number): Promise<boolean> {
    const summary: MemorySummary = { text, upToTurnAt, at: Date.now() };
    const stored = await this.scripts.agentSaveSummary(
      this.memoryKey(personId),
      this.summaryKey(personId),
      JSON.stringify(summary),
      upToTurnAt,
    );
    return Number(stored) === 1;
  }

  async personsToCompact(keepTurns: number): Promise<string[]> {
    const { redis } = this.options;
    const scored = await redis.zrange(
      this.candidatesKey(),
      '0',
      String(CANDIDATES_PER_CALL - 1),
      'WITHSCORES',
    );
    const candidates: { personId: string; score: string }[] = [];
    for (let i = 0; i + 1 < scored.length; i += 2) {
      candidates.push({ personId: scored[i] as string, score: scored[i + 1] as string });
    }
    if (candidates.length === 0) return [];
    const reads = redis.pipeline();
    for (const { personId } of candidates) {
      reads.lrange(this.memoryKey(personId), -(keepTurns + 1), -1);
      reads.get(this.summaryKey(personId));
    }
    const results = (await reads.exec()) ?? [];
    const persons: string[] = [];
    for (const [i, { personId, score }] of candidates.entries()) {
      const [listError, list] = results[2 * i] ?? [];
      const [summaryError, summary] = results[2 * i + 1] ?? [];
      if (listError || summaryError) throw listError ?? summaryError;
      const turns = turnsSinceReset(
        (list as string[]).map((item) => JSON.parse(item) as MemoryEntry),
        keepTurns + 1,
      );
      const newestOutside = turns.length > keepTurns ? turns[0] : undefined;
      const upTo = summary ? (JSON.parse(summary as string) as MemorySummary).upToTurnAt : -1;
      if (newestOutside && newestOutside.at > upTo) persons.push(personId);
      // Nothing to compact now: forgotten until their next turn (unless one came meanwhile).
      else await this.scripts.agentForgetCandidate(this.candidatesKey(), personId, score);
    }
    return persons;
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

  private get scripts(): Redis & MemoryScripts {
    return this.options.redis as Redis & MemoryScripts;
  }

  private candidatesKey(): string {
    return `${this.options.keyPrefix}:mem-compact`;
  }

  private summaryKey(personId: string): string {
    return `${this.options.keyPrefix}:memsum:${personId}`;
  }

  private memoryKey(personId: string): string {
    return `${this.options.keyPrefix}:mem:${personId}`;
  }

  private eventKey(eventKey: string): string {
    return `${this.options.keyPrefix}:evt:${eventKey}`;
  }
}

type Script = (...args: (string | number)[]) => Promise<unknown>;
interface MemoryScripts {
  agentCommit: Script;
  agentSaveSummary: Script;
  agentForgetCandidate: Script;
}
