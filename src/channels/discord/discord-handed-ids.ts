/**
 * Ids of the messages this adapter handed on to the agent (or has in hand), so a read-back does
 * not hand on again what the live session already did. A fresh session (after a token rotation,
 * say) reads back from a little before its cursor, and a message posted while a read-back runs
 * arrives live and in the read-back too; the agent would drop the repeat, but only after a
 * round trip to its store, and only if its dedupe window still holds the first.
 */
export class HandedIds {
  /** Insertion-ordered, so the oldest id is the first to go. */
  private readonly ids = new Set<string>();

  /** @param capacity How many ids to remember. Default 2000: far more than a read-back overlap holds. */
  constructor(private readonly capacity: number = 2000) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`HandedIds capacity must be an integer >= 1, got ${String(capacity)}`);
    }
  }

  /** Takes `id` for handing on; false when it was already taken (handed on, or in hand). */
  claim(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return true;
  }

  /** Gives `id` up again: the agent did not accept it, so a later read-back must hand it on. */
  release(id: string): void {
    this.ids.delete(id);
  }
}
