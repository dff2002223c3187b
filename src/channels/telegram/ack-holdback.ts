/**
 * Keeps Telegram from forgetting updates the agent has not accepted yet.
 *
 * In long polling, Telegram drops every update below the `offset` of the next `getUpdates`, and
 * grammy computes that offset as "last update tried + 1", whether the handler succeeded or threw,
 * and confirms it once more in `bot.stop()`. So an update whose `sink.receive` is still running, or
 * failed, would be acknowledged and lost. Instead of reimplementing the polling loop, the adapter
 * rewrites the `offset` of every `getUpdates` call (an API transformer) to at most the lowest
 * update not yet accepted: Telegram keeps it and sends it again with everything after it. Updates
 * after a failed one are skipped until it is accepted, so they arrive again in order, once.
 */
export class AckHoldback {
  private readonly inFlight = new Set<number>();
  private failedAt: number | undefined;
  private failures = 0;

  /** True while an earlier update failed: this one will be delivered again after it. */
  shouldSkip(updateId: number): boolean {
    return this.failedAt !== undefined && updateId > this.failedAt;
  }

  begin(updateId: number): void {
    this.inFlight.add(updateId);
  }

  succeeded(updateId: number): void {
    this.inFlight.delete(updateId);
    if (this.failedAt === updateId) {
      this.failedAt = undefined;
      this.failures = 0;
    }
  }

  /** Returns the number of consecutive failures, for the back-off before the next attempt. */
  failed(updateId: number): number {
    this.inFlight.delete(updateId);
    this.failedAt = this.failedAt === undefined ? updateId : Math.min(this.failedAt, updateId);
    this.failures += 1;
    return this.failures;
  }

  /** The offset to send instead of grammy's: never past an update not yet accepted. */
  capOffset(offset: number): number {
    let cap = offset;
    for (const id of this.inFlight) cap = Math.min(cap, id);
    if (this.failedAt !== undefined) cap = Math.min(cap, this.failedAt);
    return cap;
  }

  /**
   * Sees each `getUpdates` answer. If the failed update is not at its head, Telegram no longer has
   * it (updates expire after 24 hours): stop waiting for it, or every later update would be
   * skipped forever. Returns the id given up on, if any.
   */
  observeBatch(updateIds: readonly number[]): number | undefined {
    const failedAt = this.failedAt;
    if (failedAt === undefined) return undefined;
    const first = updateIds[0];
    if (first !== undefined && first <= failedAt) return undefined;
    this.failedAt = undefined;
    this.failures = 0;
    return failedAt;
  }
}
