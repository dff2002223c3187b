import { CircuitState, ConsecutiveBreaker, CountBreaker, type IBreaker } from 'cockatiel';

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
 *
 * A breaker is closed again by a health probe, which is cheaper than a real call and may pass
 * while real calls still fail (a model list answers, chat does not). So after a probe closes it,
 * the provider is on probation: if its first real call fails, the breaker opens again at once
 * instead of letting another full run of failures through.
 */
export class CompositeBreaker implements IBreaker {
  private readonly consecutive: ConsecutiveBreaker;
  private readonly rate: CountBreaker;
  private probation = false;

  constructor(thresholds: BreakerThresholds) {
    this.consecutive = new ConsecutiveBreaker(thresholds.consecutiveFailures);
    this.rate = new CountBreaker({
      threshold: thresholds.failureRate,
      size: thresholds.windowSize,
      minimumNumberOfCalls: thresholds.minimumCalls,
    });
  }

  get state(): unknown {
    return { consecutive: this.consecutive.state, rate: this.rate.state, probation: this.probation };
  }

  set state(value: unknown) {
    const v = value as { consecutive?: unknown; rate?: unknown; probation?: unknown };
    if (typeof v?.consecutive === 'number') this.consecutive.state = v.consecutive;
    if (v?.rate !== undefined) this.rate.state = v.rate;
    if (typeof v?.probation === 'boolean') this.probation = v.probation;
  }

  success(state: CircuitState): void {
    // A success in half-open is the probe that closes the breaker; one while closed ends probation.
    this.probation = state === CircuitState.HalfOpen;
    this.consecutive.success();
    this.rate.success(state);
  }

  failure(state: CircuitState): boolean {
    const onProbation = this.probation && state === CircuitState.Closed;
    this.probation = false;
    // Both counters must see every failure, so no short-circuit.
    const byRun = this.consecutive.failure();
    const byRate = this.rate.failure(state);
    return onProbation || byRun || byRate;
  }
}
