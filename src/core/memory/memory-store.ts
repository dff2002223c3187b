/**
 * Conversation memory and inbound-event deduplication behind one interface, because the two must
 * change together: a turn is stored and its event marked answered in one atomic step, so a crash
 * can never leave an answered event without its turn (or a stored turn that would be answered
 * again).
 */
export interface Turn {
  id: string;
  personId: string;
  channel: string;
  user: string;
  assistant: string;
  /** Epoch milliseconds when the reply was produced. */
  at: number;
}

/** Starts a fresh context for a person; older turns stay in history but are not sent as context. */
export interface ResetMarker {
  reset: true;
  personId: string;
  at: number;
}

export type MemoryEntry = Turn | ResetMarker;

export function isTurn(entry: MemoryEntry): entry is Turn {
  return !('reset' in entry);
}

export type EventClaim =
  | { status: 'claimed' }
  | { status: 'in_progress' }
  | { status: 'answered'; reply: string };

export interface CommitInput {
  /** `channel:eventId`, marked answered with `reply`. */
  eventKey: string;
  reply: string;
  /** Absent for command replies, which are not conversation context. */
  turn?: Turn;
  /** A reset marker to store along with the reply (the `/reset` command). */
  reset?: ResetMarker;
}

/**
 * What memory compaction wrote for a person: a summary of their turns up to (and including) the
 * one at `upToTurnAt`, since their last reset. A reset drops it.
 */
export interface MemorySummary {
  text: string;
  /** `at` of the newest turn the summary covers. */
  upToTurnAt: number;
  /** Epoch ms when it was written. */
  at: number;
}

export interface MemoryStore {
  readonly backend: 'log' | 'redis';
  open(): Promise<void>;
  /** Claims an inbound event so it is handled once, or reports that it was seen already. */
  claimEvent(eventKey: string): Promise<EventClaim>;
  /** Gives a claim back after a failed turn, so the platform's retry is handled. */
  releaseEvent(eventKey: string): Promise<void>;
  /**
   * Keeps a claim alive while its turn runs; call the result when the turn ends. A shared store's
   * claims expire soon after their holder dies, so another server can answer the event.
   */
  keepClaim(eventKey: string): () => void;
  /** Durably stores the reply (and turn) and marks the event answered. Resolves once durable. */
  commit(input: CommitInput): Promise<void>;
  /** The person's most recent turns since their last reset, oldest first. */
  recentTurns(personId: string, limit: number): Promise<Turn[]>;
  /** The person's summary of turns older than the context window, if compaction wrote one. */
  summary(personId: string): Promise<MemorySummary | undefined>;
  /**
   * Durably stores a summary of the person's turns up to the one at `upToTurnAt`. Returns false
   * (and changes nothing) when it would be stale: a reset came after those turns, they are no
   * longer stored, or a summary reaching as far already exists.
   */
  saveSummary(personId: string, text: string, upToTurnAt: number): Promise<boolean>;
  /**
   * Persons whose turns since their last reset include one that is older than their newest
   * `keepTurns` (so no longer sent as context) and newer than their summary: those to compact.
   */
  personsToCompact(keepTurns: number): Promise<string[]>;
  /** Throws when the backend cannot serve (for `/readyz`). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Takes the turns after the last reset marker, keeping at most `limit` of the newest. */
export function turnsSinceReset(entries: readonly MemoryEntry[], limit: number): Turn[] {
  const turns: Turn[] = [];
  for (let i = entries.length - 1; i >= 0 && turns.length < limit; i -= 1) {
    const entry = entries[i] as MemoryEntry;
    if (!isTurn(entry)) break;
    turns.push(entry);
  }
  return turns.reverse();
}

/**
 * The turns a summary should cover next: those since the last reset that are older than the
 * newest `keepTurns` and newer than the current summary, oldest first.
 */
export function turnsToSummarise(
  turnsSinceLastReset: readonly Turn[],
  keepTurns: number,
  summary: MemorySummary | undefined,
): Turn[] {
  const older = turnsSinceLastReset.slice(0, Math.max(0, turnsSinceLastReset.length - keepTurns));
  return summary ? older.filter((turn) => turn.at > summary.upToTurnAt) : older;
}
