/**
 * Latency of one provider: an EWMA for routing by latency, and percentiles over the most recent
 * samples for hedging delays and `/status`.
 */
export class LatencyTracker {
  private readonly samples: number[] = [];
  private next = 0;
  private ewmaMs: number | undefined;

  constructor(
    private readonly capacity = 256,
    /** Weight of the newest sample. */
    private readonly alpha = 0.2,
  ) {}

  record(ms: number): void {
    this.ewmaMs = this.ewmaMs === undefined ? ms : this.alpha * ms + (1 - this.alpha) * this.ewmaMs;
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
  }

  get ewma(): number | undefined {
    return this.ewmaMs;
  }

  get count(): number {
    return this.samples.length;
  }

  /** The p-th percentile (0-100) of recent samples, or undefined with none yet. */
  percentile(p: number): number | undefined {
    if (this.samples.length === 0) return undefined;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[index];
  }
}
