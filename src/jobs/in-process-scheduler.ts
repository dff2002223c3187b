import type { Logger } from 'pino';
import type { JobDefinition, JobOutcome, JobScheduler } from './job-scheduler.js';

interface ScheduledJob {
  definition: JobDefinition;
  timer: NodeJS.Timeout;
  running?: Promise<void>;
  outcome: JobOutcome;
}

/**
 * Timers in this process. A run never overlaps the previous run of the same job: a slow run
 * makes the next one skip its turn rather than pile up.
 */
export class InProcessScheduler implements JobScheduler {
  private readonly jobs = new Map<string, ScheduledJob>();
  private readonly abort = new AbortController();

  constructor(private readonly logger: Logger) {}

  add(definition: JobDefinition): void {
    this.remove(definition.name);
    const job: ScheduledJob = {
      definition,
      outcome: { name: definition.name, runs: 0 },
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

  outcomes(): JobOutcome[] {
    return [...this.jobs.values()].map((j) => ({ ...j.outcome }));
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
    job.running = job.definition
      .run(this.abort.signal)
      .then(
        () => {
          job.outcome.lastOutcome = 'ok';
          delete job.outcome.lastError;
        },
        (error: unknown) => {
          job.outcome.lastOutcome = 'failed';
          job.outcome.lastError = (error as Error)?.message ?? String(error);
          this.logger.warn({ job: job.definition.name, err: job.outcome.lastError }, 'job failed');
        },
      )
      .finally(() => {
        job.outcome.runs += 1;
        job.outcome.lastRunAt = Date.now();
        job.running = undefined;
      });
  }
}
