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

export interface MemoryStore {
  readonly backend: 'log' | 'redis';
  open(): Promise<void>;
  /** Claims an inbound event so it is handled once, or reports that it was seen already. */
  claimEvent(eventKey: string): Promise<EventClaim>;
  /** Gives a claim back after a failed turn, so the platform's retry is handled. */
  releaseEvent(eventKey: string): Promise<void>;
  /** Durably stores the reply (and turn) and marks the event answered. Resolves once durable. */
  commit(input: CommitInput): Promise<void>;
  /** The person's most recent turns since their last reset, oldest first. */
  recentTurns(personId: string, limit: number): Promise<Turn[]>;
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
