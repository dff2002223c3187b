import { type CircuitState, ConsecutiveBreaker, CountBreaker, type IBreaker } from 'cockatiel';

export interface BreakerThresholds {
  /** Open after this many failures in a row. */
  consecutiveFailures: number;
  /** Open when more than this share (0-1) of the last `windowSize` calls failed... */
  failureRate: number;
  windowSize: number;
  /** ...once at least this many calls are in the window. */
  minimumCalls: number;
}

/**
 * Opens on whichever trips first: a run of consecutive failures (a provider that is down) or a
 * failure rate over a sliding window (a provider that fails one call in two). Both counters are
 * cockatiel's own; this only combines them behind its `IBreaker` interface.
 */
export class CompositeBreaker implements IBreaker {
  private readonly consecutive: ConsecutiveBreaker;
  private readonly rate: CountBreaker;

  constructor(thresholds: BreakerThresholds) {
    this.consecutive = new ConsecutiveBreaker(thresholds.consecutiveFailures);
    this.rate = new CountBreaker({
      threshold: thresholds.failureRate,
      size: thresholds.windowSize,
      minimumNumberOfCalls: thresholds.minimumCalls,
    });
  }

  get state(): unknown {
    return { consecutive: this.consecutive.state, rate: this.rate.state };
  }

  set state(value: unknown) {
    const v = value as { consecutive?: unknown; rate?: unknown };
    if (typeof v?.consecutive === 'number') this.consecutive.state = v.consecutive;
    if (v?.rate !== undefined) this.rate.state = v.rate;
  }

  success(state: CircuitState): void {
    this.consecutive.success();
    this.rate.success(state);
  }

  failure(state: CircuitState): boolean {
    // Both must see every failure, so no short-circuit.
    const byRun = this.consecutive.failure();
    const byRate = this.rate.failure(state);
    return byRun || byRate;
  }
}
