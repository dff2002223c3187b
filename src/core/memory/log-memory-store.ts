import { join } from 'node:path';
import type { Logger } from 'pino';
import { AppendLog } from './append-log.js';
import type {
  CommitInput,
  EventClaim,
  MemoryEntry,
  MemoryStore,
  MemorySummary,
  Turn,
} from './memory-store.js';
import { turnsSinceReset } from './memory-store.js';

/** What the log file holds: one record per answered event, and the summaries compaction wrote. */
interface EventRecord {
  t: 'event';
  key: string;
  reply: string;
  at: number;
  turn?: Turn;
  reset?: { personId: string; at: number };
}

interface SummaryRecord extends MemorySummary {
  t: 'summary';
  personId: string;
}

type LogRecord = EventRecord | SummaryRecord;

export interface LogMemoryStoreOptions {
  dataDir: string;
  retainTurns: number;
  dedupeTtlSeconds: number;
  logger: Logger;
  now?: () => number;
}

/**
 * Embedded memory: the local append-only log is the source of truth, and an in-memory index of
 * each person's recent entries and of answered events serves reads. One process owns the file.
 */
export class LogMemoryStore implements MemoryStore {
  readonly backend = 'log' as const;
  private readonly log: AppendLog<LogRecord>;
  private readonly entries = new Map<string, MemoryEntry[]>();
  private readonly summaries = new Map<string, MemorySummary>();
  /** Each person's latest reset, kept after the marker itself is trimmed from `entries`. */
  private readonly lastResetAt = new Map<string, number>();
  /** Answered events in the order they were answered, so expiry walks from the front. */
  private readonly answered = new Map<string, { reply: string; at: number }>();
  private readonly inProgress = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: LogMemoryStoreOptions) {
    this.log = new AppendLog<LogRecord>(join(options.dataDir, 'memory.log'));
    this.now = options.now ?? Date.now;
  }

  async open(): Promise<void> {
    const loaded = this.log.open();
    if (loaded.skipped > 0) {
      this.options.logger.warn(
        { path: this.log.path, skipped: loaded.skipped, tornTail: loaded.tornTail },
        'memory log: skipped damaged records (a torn last record is expected after a crash)',
      );
    }
    for (const record of loaded.records) {
      if (record.t === 'event') this.index(record);
      else if (record.t === 'summary' && this.isCurrentSummary(record.personId, record.upToTurnAt)) {
        this.summaries.set(record.personId, {
          text: record.text,
          upToTurnAt: record.upToTurnAt,
          at: record.at,
        });
      }
    }
    this.expireEvents();
  }

  async claimEvent(eventKey: string): Promise<EventClaim> {
    const done = this.answered.get(eventKey);
    if (done) return { status: 'answered', reply: done.reply };
    if (this.inProgress.has(eventKey)) return { status: 'in_progress' };
    this.inProgress.add(eventKey);
    return { status: 'claimed' };
  }

  async releaseEvent(eventKey: string): Promise<void> {
    this.inProgress.delete(eventKey);
  }

  /** One process owns this store: its claims end with it, nothing to renew. */
  keepClaim(): () => void {
    return () => {};
  }

  async commit(input: CommitInput): Promise<void> {
    const record: EventRecord = { t: 'event', key: input.eventKey, reply: input.reply, at: this.now() };
    if (input.turn) record.turn = input.turn;
    if (input.reset) record.reset = { personId: input.reset.personId, at: input.reset.at };
    await this.log.append(record);
    // Index only after the fsync: nothing is served from memory that is not on disk.
    this.index(record);
    this.inProgress.delete(input.eventKey);
    this.expireEvents();
  }

  async recentTurns(personId: string, limit: number): Promise<Turn[]> {
    return turnsSinceReset(this.entries.get(personId) ?? [], limit);
  }

  async summary(personId: string): Promise<MemorySummary | undefined> {
    return this.summaries.get(personId);
  }

  async saveSummary(personId: string, text: string, upToTurnAt: number): Promise<boolean> {
    if (!this.isCurrentSummary(personId, upToTurnAt)) return false;
    const covered = (this.entries.get(personId) ?? []).some((e) => !('reset' in e) && e.at <= upToTurnAt);
    if (!covered) return false;
    const summary: MemorySummary = { text, upToTurnAt, at: this.now() };
    await this.log.append({ t: 'summary', personId, ...summary });
    // Checked again after the fsync: a reset committed meanwhile wins.
    if (!this.isCurrentSummary(personId, upToTurnAt)) return false;
    this.summaries.set(personId, summary);
    return true;
  }

  async personsToCompact(keepTurns: number): Promise<string[]> {
    const persons: string[] = [];
    for (const [personId, list] of this.entries) {
      const turns = turnsSinceReset(list, keepTurns + 1);
      const newestOutside = turns.length > keepTurns ? turns[0] : undefined;
      if (newestOutside && newestOutside.at > (this.summaries.get(personId)?.upToTurnAt ?? -1)) {
        persons.push(personId);
      }
    }
    return persons;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    await this.log.close();
  }

  private index(record: EventRecord): void {
    this.answered.delete(record.key);
    this.answered.set(record.key, { reply: record.reply, at: record.at });
    if (record.turn) this.push(record.turn.personId, record.turn);
    if (record.reset) {
      this.push(record.reset.personId, { reset: true, ...record.reset });
      this.lastResetAt.set(record.reset.personId, record.reset.at);
      this.summaries.delete(record.reset.personId);
    }
  }

  /** A summary is current when no reset came after the turns it covers, nor a summary reaching as far. */
  private isCurrentSummary(personId: string, upToTurnAt: number): boolean {
    const resetAt = this.lastResetAt.get(personId);
    if (resetAt !== undefined && resetAt >= upToTurnAt) return false;
    const current = this.summaries.get(personId);
    return current === undefined || current.upToTurnAt < upToTurnAt;
  }

  private push(personId: string, entry: MemoryEntry): void {
    let list = this.entries.get(personId);
    if (!list) {
      list = [];
      this.entries.set(personId, list);
    }
    list.push(entry);
    // Trim in chunks so a long-lived person does not cost a splice per message.
    if (list.length > this.options.retainTurns * 2) list.splice(0, list.length - this.options.retainTurns);
  }

  private expireEvents(): void {
    const cutoff = this.now() - this.options.dedupeTtlSeconds * 1000;
    for (const [key, value] of this.answered) {
      if (value.at >= cutoff) break;
      this.answered.delete(key);
    }
  }
}
