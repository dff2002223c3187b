import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { JobDefinition } from '../../jobs/job-scheduler.js';
import type { IdentityMirrorState, ResilientIdentityStore } from '../identity/resilient-identity-store.js';
import { writeFileAtomically } from '../memory/append-log.js';
import type { MemoryMirrorState, ResilientMemoryStore } from '../memory/resilient-memory-store.js';
import type { RedisReachability } from './redis-reachability.js';

/** What a node keeps on disk of the shared state, to serve from while Redis is unreachable. */
export interface SnapshotFile {
  version: 1;
  /** Epoch ms when it was read from Redis. */
  savedAt: number;
  identity: IdentityMirrorState;
  memory: MemoryMirrorState;
  /** The cost guard's last-known budget counters (`ResilientCostGuard.exportState`). */
  costs?: unknown;
}

/** The parts of the cost guard the snapshot saves and restores. */
export interface SnapshotCosts {
  refresh(): Promise<void>;
  exportState(): unknown;
  importState(state: unknown): void;
}

export interface RedisSnapshotOptions {
  dataDir: string;
  memory: ResilientMemoryStore;
  identity: ResilientIdentityStore;
  /** Reads every link and last-seen address from Redis. */
  readIdentities: () => Promise<IdentityMirrorState>;
  costs?: SnapshotCosts;
  reachability: RedisReachability;
  /** Turns read per person: the context window. */
  turnsPerPerson: number;
  /** The most recently seen persons whose memory is saved. */
  maxPersons: number;
  everyMs: number;
  logger: Logger;
  now?: () => number;
}

/** Persons read from Redis at once while saving. */
const READS_AT_ONCE = 64;

/**
 * The `redis-snapshot` job: copies the shared state a node needs to keep answering while Redis is
 * unreachable (identities, each recently seen person's context window and summary, the budget
 * counters) from Redis into the node's mirrors and to `data/redis-snapshot.json`, written whole
 * and renamed into place, so a node that STARTS during an outage has it too.
 *
 * It runs on every node, not once across the cluster: each node serves an outage from its own
 * disk, and cannot read the other's while Redis is away.
 */
export class RedisSnapshot {
  readonly path: string;
  private readonly now: () => number;

  constructor(private readonly options: RedisSnapshotOptions) {
    this.path = join(options.dataDir, 'redis-snapshot.json');
    this.now = options.now ?? Date.now;
  }

  /** Loads the saved snapshot into the mirrors (what they hold already is fresher and is kept). */
  load(): SnapshotFile | undefined {
    const file = this.readFile();
    if (!file) return undefined;
    this.options.identity.importMirror(file.identity);
    this.options.memory.importMirror(file.memory);
    try {
      if (file.costs !== undefined) this.options.costs?.importState(file.costs);
    } catch (error) {
      this.options.logger.warn(
        { path: this.path, err: (error as Error).message },
        'ignoring the budget counters of the Redis snapshot',
      );
    }
    return file;
  }

  private readFile(): SnapshotFile | undefined {
    let raw: string;
    try {
      raw = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    let file: SnapshotFile;
    try {
      file = JSON.parse(raw) as SnapshotFile;
      if (file.version !== 1) throw new Error(`unknown version ${String(file.version)}`);
    } catch (error) {
      this.options.logger.warn(
        { path: this.path, err: (error as Error).message },
        'ignoring an unreadable Redis snapshot; the next run writes a new one',
      );
      return undefined;
    }
    return file;
  }

  /** Reads the state from Redis into the mirrors and saves it; does nothing while Redis is away. */
  async save(): Promise<SnapshotFile | undefined> {
    if (!this.options.reachability.reachable) return undefined;
    const identities = await this.options.readIdentities();
    this.options.identity.importMirror(identities, { replace: true });
    // The persons seen most recently on any platform, and those this node talked with (HTTP
    // conversations have no last-seen address).
    const persons = [
      ...new Set([
        ...recentPersons(identities, this.options.maxPersons),
        ...this.options.memory.mirroredPersons(),
      ]),
    ].slice(0, this.options.maxPersons);
    const turns: MemoryMirrorState['turns'] = {};
    const summaries: MemoryMirrorState['summaries'] = {};
    for (let i = 0; i < persons.length; i += READS_AT_ONCE) {
      await Promise.all(
        persons.slice(i, i + READS_AT_ONCE).map(async (personId) => {
          // Through the store: what it reads also refreshes its mirror.
          const [recent, summary] = await Promise.all([
            this.options.memory.recentTurns(personId, this.options.turnsPerPerson),
            this.options.memory.summary(personId),
          ]);
          if (recent.length > 0) turns[personId] = recent;
          if (summary) summaries[personId] = summary;
        }),
      );
    }
    await this.options.costs?.refresh();
    const file: SnapshotFile = {
      version: 1,
      savedAt: this.now(),
      identity: identities,
      memory: { turns, summaries },
      ...(this.options.costs ? { costs: this.options.costs.exportState() } : {}),
    };
    writeFileAtomically(this.path, JSON.stringify(file), 0o600);
    return file;
  }

  /**
   * Saves what the mirrors hold now, without reading Redis: on a graceful stop, so a process that
   * restarts while Redis is away still has the context of the turns it answered during the outage
   * (the write-ahead log has those too; the mirror adds what it had read from Redis before).
   */
  saveMirrors(): void {
    const previous = this.readFile();
    const file: SnapshotFile = {
      version: 1,
      savedAt: previous?.savedAt ?? this.now(),
      identity: this.options.identity.exportMirror(),
      memory: this.options.memory.exportMirror(),
      ...(this.options.costs ? { costs: this.options.costs.exportState() } : {}),
    };
    writeFileAtomically(this.path, JSON.stringify(file), 0o600);
  }

  job(): JobDefinition {
    return {
      name: 'redis-snapshot',
      everyMs: this.options.everyMs,
      run: async () => {
        const saved = await this.save();
        if (saved)
          this.options.logger.debug(
            { persons: Object.keys(saved.memory.turns).length, path: this.path },
            'Redis state saved for outages',
          );
      },
    };
  }
}

/** Persons (not accounts) by their latest activity on any linked account, newest first. */
function recentPersons(identities: IdentityMirrorState, max: number): string[] {
  const latest = new Map<string, number>();
  for (const [account, seen] of Object.entries(identities.seen)) {
    const person = identities.links[account] ?? account;
    latest.set(person, Math.max(latest.get(person) ?? 0, seen.at));
  }
  return [...latest]
    .sort((a, b) => b[1] - a[1])
    .slice(0, max)
    .map(([person]) => person);
}
