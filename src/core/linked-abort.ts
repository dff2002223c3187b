/**
 * What a parent signal must offer: a native `AbortSignal`, or the `abort-controller` polyfill's
 * signals grammy hands its transformers (which `AbortSignal.any` refuses).
 */
export interface SignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * An abort signal for one unit of work (a turn, a provider call, a probe, a Bot API request): it
 * aborts when one of its parents does, when its own time runs out, or when `abort()` is called,
 * and `dispose()` lets go of the parents and the timer the moment the work is over.
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
  private readonly parents: SignalLike[] = [];
  private readonly onParentAbort = (): void => {
    this.stop(this.parents.find((parent) => parent.aborted)?.reason);
  };

  /**
   * @param parents abort this one too (undefined ones are skipped); one already aborted makes
   *   this one start aborted, with its reason.
   * @param timeoutMs aborts this one with a `TimeoutError` after that long; none when undefined.
   */
  constructor(parents: readonly (SignalLike | undefined)[] = [], timeoutMs?: number) {
    for (const parent of parents) {
      if (parent === undefined) continue;
      if (parent.aborted) {
        this.stop(parent.reason);
        return;
      }
      this.parents.push(parent);
      parent.addEventListener('abort', this.onParentAbort);
    }
    if (timeoutMs !== undefined) this.restartTimer(timeoutMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Aborts now (e.g. the losing half of a hedged call); the parents are not touched. */
  abort(reason?: unknown): void {
    this.stop(reason ?? new DOMException('This operation was aborted', 'AbortError'));
  }

  /** Starts the timer again from now (a stream's stall deadline after each chunk). */
  restartTimer(timeoutMs: number): void {
    if (this.controller.signal.aborted) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.stop(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
      timeoutMs,
    );
    // A deadline is no reason to keep the process running.
    this.timer.unref();
  }

  /** Stops the timer and stops listening to the parents; the signal keeps its state. */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const parent of this.parents) parent.removeEventListener('abort', this.onParentAbort);
    this.parents.length = 0;
  }

  private stop(reason: unknown): void {
    this.dispose();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
}
