/**
 * An abort signal for one unit of work (a turn, a provider call, a probe): it aborts when its
 * parent does, when its own time runs out, or when `abort()` is called, and `dispose()` lets go
 * of the parent and the timer the moment the work is over.
 *
 * Why not `AbortSignal.timeout` and `AbortSignal.any`: a timeout signal stays reachable from its
 * timer until the timer fires, and with it every listener added to it or to a signal combined
 * from it. The SDKs add an abort listener per request and never remove it, so a busy agent held
 * every recent call's abort machinery (controllers, listeners, the SDK's closures) for the whole
 * deadline: at 2,000 calls/s and a 10 s deadline, tens of megabytes that each young-generation
 * garbage collection copied into the old generation. That copying was most of the gateway's
 * tail latency. Disposed, this signal is garbage as soon as the call is.
 */
export class LinkedAbort {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private readonly parent: AbortSignal | undefined;
  private readonly onParentAbort: (() => void) | undefined;
  /** True once aborted by its own timer or `abort()`, not by the parent. */
  private selfAborted = false;

  /**
   * @param parent aborts this one too; already aborted, this starts aborted.
   * @param timeoutMs aborts this one with a `TimeoutError` after that long; none when undefined.
   */
  constructor(parent?: AbortSignal, timeoutMs?: number) {
    if (parent?.aborted) {
      this.controller.abort(parent.reason);
      return;
    }
    if (parent) {
      this.parent = parent;
      this.onParentAbort = () => this.stop(parent.reason);
      parent.addEventListener('abort', this.onParentAbort, { once: true });
    }
    if (timeoutMs !== undefined) this.restartTimer(timeoutMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether this one aborted by its own timer or `abort()`, rather than by its parent. */
  get aborted(): boolean {
    return this.selfAborted;
  }

  /** Aborts now (e.g. the losing half of a hedged call); the parent is not touched. */
  abort(reason?: unknown): void {
    if (this.controller.signal.aborted) return;
    this.selfAborted = true;
    this.stop(reason ?? new DOMException('This operation was aborted', 'AbortError'));
  }

  /** Starts the timer again from now (a stream's stall deadline after each chunk). */
  restartTimer(timeoutMs: number): void {
    if (this.controller.signal.aborted) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.selfAborted = true;
      this.stop(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }, timeoutMs);
  }

  /** Stops the timer and stops listening to the parent; the signal keeps its state. */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.onParentAbort) this.parent?.removeEventListener('abort', this.onParentAbort);
  }

  private stop(reason: unknown): void {
    this.dispose();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
}
