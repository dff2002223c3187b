import { join } from 'node:path';
import type { Logger } from 'pino';
import { AppendLog } from './append-log.js';
import type { CommitInput, EventClaim, MemoryEntry, MemoryStore, Turn } from './memory-store.js';
import { turnsSinceReset } from './memory-store.js';

/** What the log file holds: one record per answered event. */
interface EventRecord {
  t: 'event';
  key: string;
  reply: string;
  at: number;
  turn?: Turn;
  reset?: { personId: string; at: number };
}

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
  private readonly log: AppendLog<EventRecord>;
  private readonly entries = new Map<string, MemoryEntry[]>();
  /** Answered events in the order they were answered, so expiry walks from the front. */
  private readonly answered = new Map<string, { reply: string; at: number }>();
  private readonly inProgress = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: LogMemoryStoreOptions) {
    this.log = new AppendLog<EventRecord>(join(options.dataDir, 'memory.log'));
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
    for (const record of loaded.records) if (record.t === 'event') this.index(record);
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

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    await this.log.close();
  }

  private index(record: EventRecord): void {
    this.answered.delete(record.key);
    this.answered.set(record.key, { reply: record.reply, at: record.at });
    if (record.turn) this.push(record.turn.personId, record.turn);
    if (record.reset) this.push(record.reset.personId, { reset: true, ...record.reset });
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
