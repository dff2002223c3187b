import type { Logger } from 'pino';
import {
  checkJobDefinition,
  errorMessage,
  type JobAlert,
  type JobDefinition,
  type JobOutcome,
  type JobScheduler,
} from './job-scheduler.js';

interface ScheduledJob {
  definition: JobDefinition;
  timer: NodeJS.Timeout;
  running?: Promise<void>;
  outcome: JobOutcome;
}

export interface InProcessSchedulerOptions {
  /** This node's name in outcomes. Default: none shown. */
  nodeId?: string;
  /** Failed runs in a row that call `onAlert`. Default 3. */
  alertAfterFailures?: number;
  /** Called at `alertAfterFailures` failed runs in a row, and on each further one. Default: none. */
  onAlert?: JobAlert;
}

/**
 * Timers in this process. A run never overlaps the previous run of the same job: a slow run
 * makes the next one skip its turn rather than pile up. A failed run is not retried; the next
 * turn runs as scheduled.
 */
export class InProcessScheduler implements JobScheduler {
  private readonly jobs = new Map<string, ScheduledJob>();
  private readonly abort = new AbortController();
  private readonly alertAfter: number;

  constructor(
    private readonly logger: Logger,
    private readonly options: InProcessSchedulerOptions = {},
  ) {
    this.alertAfter = options.alertAfterFailures ?? 3;
    if (!Number.isInteger(this.alertAfter) || this.alertAfter < 1) {
      throw new RangeError(`alertAfterFailures must be an integer >= 1, got ${options.alertAfterFailures}`);
    }
  }

  add(definition: JobDefinition): void {
    checkJobDefinition(definition);
    this.remove(definition.name);
    const job: ScheduledJob = {
      definition,
      outcome: { name: definition.name, scope: 'node', runs: 0, consecutiveFailures: 0 },
      timer: setInterval(() => this.runOnce(job), definition.everyMs),
    };
    job.timer.unref();
    this.jobs.set(definition.name, job);
  }

  remove(name: string): void {
    const job = this.jobs.get(name);
    if (!job) return;
    clearInterval(job.timer);
    this.jobs.delete(name);
  }

  /** Timers run from `add`; nothing more to start. */
  async start(): Promise<void> {}

  async outcomes(): Promise<JobOutcome[]> {
    return [...this.jobs.values()].map((j) => ({ ...j.outcome, everyMs: j.definition.everyMs }));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    const running = [...this.jobs.values()].map((j) => j.running);
    for (const job of this.jobs.values()) clearInterval(job.timer);
    await Promise.allSettled(running);
    this.jobs.clear();
  }

  private runOnce(job: ScheduledJob): void {
    if (job.running || this.abort.signal.aborted) return;
    const scheduledAt = Date.now();
    const { outcome } = job;
    job.running = job.definition
      .run(this.abort.signal, { scheduledAt, attempt: 1, node: this.options.nodeId ?? 'local' })
      .then(
        () => {
          outcome.lastOutcome = 'ok';
          outcome.consecutiveFailures = 0;
          delete outcome.lastError;
        },
        (error: unknown) => {
          outcome.lastOutcome = 'failed';
          outcome.lastError = errorMessage(error);
          outcome.consecutiveFailures += 1;
          this.logger.warn({ job: job.definition.name, err: outcome.lastError }, 'job failed');
          if (outcome.consecutiveFailures >= this.alertAfter && !this.abort.signal.aborted) {
            const cause = error instanceof Error ? error : new Error(outcome.lastError);
            try {
              this.options.onAlert?.(job.definition.name, cause, outcome.consecutiveFailures);
            } catch {
              // An alert that fails must not stop the scheduler.
            }
          }
        },
      )
      .finally(() => {
        outcome.runs += 1;
        outcome.lastRunAt = Date.now();
        if (this.options.nodeId) outcome.lastNode = this.options.nodeId;
        job.running = undefined;
      });
  }
}
