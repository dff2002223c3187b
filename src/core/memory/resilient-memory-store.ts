import type { Logger } from 'pino';
import { AgentError } from '../errors.js';
import type { RedisReachability } from '../redis/redis-reachability.js';
import type { WalRecord, WriteAheadLog } from '../redis/write-ahead-log.js';
import type { CommitInput, EventClaim, MemoryStore, MemorySummary, Turn } from './memory-store.js';
import type { RedisMemoryStore } from './redis-memory-store.js';

/** What the snapshot job saves of memory, and what a node starting during an outage loads. */
export interface MemoryMirrorState {
  /** Per person: the turns since their last reset, newest last (at most the mirror's size). */
  turns: Record<string, Turn[]>;
  summaries: Record<string, MemorySummary>;
}

export interface ResilientMemoryStoreOptions {
  inner: RedisMemoryStore;
  wal: WriteAheadLog;
  reachability: RedisReachability;
  /** Turns kept per person for reads while Redis is away: the context window's size. */
  mirrorTurns: number;
  /** Persons kept in the mirror; the least recently used are dropped first. Default 20 000. */
  mirrorPersons?: number;
  /** How long an event this node answered is remembered locally (the dedupe TTL). */
  dedupeTtlMs: number;
  logger: Logger;
  now?: () => number;
}

const COMMIT = 'memory.commit';

/** Events answered on this node, remembered for dedupe while Redis is away. */
const MAX_LOCAL_EVENTS = 10_000;

/**
 * Shared memory in Redis that keeps serving while Redis is unreachable.
 *
 * Every read and write made while Redis answers keeps a MIRROR up to date: each person's recent
 * turns and summary, and the events this node answered. While Redis is away (or the write-ahead
 * log still holds writes for it), reads come from the mirror and commits go to the write-ahead
 * log, which replays them to Redis in order when it returns (idempotently: a commit whose event
 * is already answered there is skipped).
 *
 * What this cannot give while Redis is away: turns the OTHER node stores meanwhile are not seen
 * here until Redis returns, and an event claimed on both nodes at once (an HTTP client retrying
 * against the other server) is not deduplicated between them. Platform events are received by the
 * one node holding the platform's connection, so they are.
 */
export class ResilientMemoryStore implements MemoryStore {
  readonly backend = 'redis' as const;
  private readonly turns = new Map<string, Turn[]>();
  private readonly summaries = new Map<string, MemorySummary>();
  /** Claims and answers made on this node, in the order made (expiry walks from the front). */
  private readonly events = new Map<string, { reply?: string; at: number }>();
  private readonly now: () => number;

  constructor(private readonly options: ResilientMemoryStoreOptions) {
    this.now = options.now ?? Date.now;
    options.wal.handle(COMMIT, (record) => options.inner.replayCommit(record.data as CommitInput));
  }

  /** Applies the commits a previous process left in the write-ahead log to the mirror. */
  async open(): Promise<void> {
    await this.options.inner.open();
  }

  /** Called with the write-ahead records found at start, in order. */
  restorePending(records: readonly WalRecord[]): void {
    for (const record of records) if (record.kind === COMMIT) this.remember(record.data as CommitInput);
  }

  async claimEvent(eventKey: string): Promise<EventClaim> {
    const local = this.events.get(eventKey);
    if (local?.reply !== undefined) return { status: 'answered', reply: local.reply };
    if (!this.options.wal.engaged) {
      const claimed = await this.redis(() => this.options.inner.claimEvent(eventKey));
      if (claimed.ok) return claimed.value;
    }
    if (local) return { status: 'in_progress' };
    this.events.set(eventKey, { at: this.now() });
    return { status: 'claimed' };
  }

  async releaseEvent(eventKey: string): Promise<void> {
    const local = this.events.get(eventKey);
    if (local && local.reply === undefined) this.events.delete(eventKey);
    if (this.options.reachability.reachable)
      await this.redis(() => this.options.inner.releaseEvent(eventKey));
  }

  keepClaim(eventKey: string): () => void {
    // Renewals that fail while Redis is away are ignored by the Redis store itself.
    return this.options.inner.keepClaim(eventKey);
  }

  async commit(input: CommitInput): Promise<void> {
    // A commit that failed for want of Redis may still have reached it: the replay skips it then.
    if (!this.options.wal.engaged && (await this.redis(() => this.options.inner.commit(input))).ok) {
      this.remember(input);
      return;
    }
    await this.options.wal.append(COMMIT, input);
    this.remember(input);
  }

  async recentTurns(personId: string, limit: number): Promise<Turn[]> {
    if (limit <= 0) return [];
    if (!this.options.wal.engaged) {
      const read = await this.redis(() => this.options.inner.recentTurns(personId, limit));
      if (read.ok) {
        // Only a read as wide as the mirror replaces it: a narrower one would shrink it.
        if (limit >= this.options.mirrorTurns || read.value.length < limit)
          this.setTurns(personId, read.value);
        return read.value;
      }
    }
    const mirrored = this.turns.get(personId) ?? [];
    if (this.options.reachability.reachable) {
      // Replaying: Redis has what came before, the mirror also what still waits in the log.
      const read = await this.redis(() => this.options.inner.recentTurns(personId, limit));
      if (read.ok) {
        const known = new Set(read.value.map((t) => t.id));
        const after = read.value.at(-1)?.at ?? Number.NEGATIVE_INFINITY;
        const waiting = mirrored.filter((t) => !known.has(t.id) && t.at >= after);
        return [...read.value, ...waiting].slice(-limit);
      }
    }
    // The mirror keeps a context window per person: a longer history (the history API) waits.
    if (limit > this.options.mirrorTurns)
      throw new AgentError(
        'memory_unavailable',
        `Redis is unreachable: only the last ${this.options.mirrorTurns} turns are at hand; try again soon`,
      );
    return mirrored.slice(-limit);
  }

  async summary(personId: string): Promise<MemorySummary | undefined> {
    if (!this.options.wal.engaged) {
      const read = await this.redis(() => this.options.inner.summary(personId));
      if (read.ok) {
        if (read.value) this.summaries.set(personId, read.value);
        else this.summaries.delete(personId);
        return read.value;
      }
    }
    return this.summaries.get(personId);
  }

  /** Compaction needs Redis: it fails while Redis is away, and its job retries later. */
  async saveSummary(personId: string, text: string, upToTurnAt: number): Promise<boolean> {
    const saved = await this.options.inner.saveSummary(personId, text, upToTurnAt);
    if (saved) this.summaries.set(personId, { text, upToTurnAt, at: this.now() });
    return saved;
  }

  personsToCompact(keepTurns: number): Promise<string[]> {
    return this.options.inner.personsToCompact(keepTurns);
  }

  /** Serving from the local log is serving: only a failure other than "unreachable" is fatal. */
  async ping(): Promise<void> {
    if (this.options.reachability.reachable) await this.redis(() => this.options.inner.ping());
  }

  async close(): Promise<void> {
    await this.options.inner.close();
  }

  /** The persons in the mirror, most recently used first. */
  mirroredPersons(): string[] {
    return [...this.turns.keys()].reverse();
  }

  /** The mirror, for the snapshot job. */
  exportMirror(): MemoryMirrorState {
    return {
      turns: Object.fromEntries(this.turns),
      summaries: Object.fromEntries(this.summaries),
    };
  }

  /**
   * Loads a snapshot into the mirror (persons already in it are kept: they are fresher). Used at
   * start, and by the snapshot job with what it read from Redis.
   */
  importMirror(state: MemoryMirrorState, options: { replace?: boolean } = {}): void {
    for (const [personId, turns] of Object.entries(state.turns)) {
      if (options.replace || !this.turns.has(personId)) this.setTurns(personId, turns);
    }
    for (const [personId, summary] of Object.entries(state.summaries)) {
      if (options.replace || !this.summaries.has(personId)) this.summaries.set(personId, summary);
    }
  }

  private redis<T>(operation: () => Promise<T>) {
    return this.options.reachability.attempt(operation);
  }

  private remember(input: CommitInput): void {
    const at = this.now();
    this.events.delete(input.eventKey);
    this.events.set(input.eventKey, { reply: input.reply, at });
    this.expireEvents(at);
    if (input.reset) {
      this.setTurns(input.reset.personId, []);
      this.summaries.delete(input.reset.personId);
    }
    if (input.turn) {
      const { personId, id } = input.turn;
      const turns = this.turns.get(personId) ?? [];
      // Already there when a restart loaded it from the snapshot and the write-ahead log both.
      if (!turns.some((t) => t.id === id)) this.setTurns(personId, [...turns, input.turn]);
    }
  }

  private setTurns(personId: string, turns: readonly Turn[]): void {
    // Re-inserted so the Map's order is least recently used first.
    this.turns.delete(personId);
    this.turns.set(personId, turns.slice(-this.options.mirrorTurns));
    const max = this.options.mirrorPersons ?? 20_000;
    for (const oldest of this.turns.keys()) {
      if (this.turns.size <= max) break;
      this.turns.delete(oldest);
      this.summaries.delete(oldest);
    }
  }

  private expireEvents(now: number): void {
    for (const [key, event] of this.events) {
      if (this.events.size <= MAX_LOCAL_EVENTS && now - event.at < this.options.dedupeTtlMs) break;
      this.events.delete(key);
    }
  }
}
