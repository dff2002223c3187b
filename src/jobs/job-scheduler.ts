/**
 * Runs maintenance jobs on a schedule. Embedded mode uses the in-process scheduler; with Redis,
 * the jobs that must run once across the cluster go to BullMQ job schedulers instead (jobs that
 * act on one node's own state, like the provider health probe, stay in-process on every node).
 */
export interface JobRun {
  /** The slot this run is for (epoch ms): one run per slot across the cluster. */
  scheduledAt: number;
  /** 1 on the first try of a run, 2 on its first retry, ... */
  attempt: number;
  /** The node running it. */
  node: string;
}

export interface JobDefinition {
  /** Letters, digits, "_" and "-". */
  name: string;
  everyMs: number;
  /** The signal is aborted when the scheduler stops (and, on BullMQ, when the run lock is lost). */
  run(signal: AbortSignal, run?: JobRun): Promise<void>;
}

export interface JobOutcome {
  name: string;
  /** `node`: runs on every node for that node; `cluster`: once across every node on one Redis. */
  scope: 'node' | 'cluster';
  /** How often it runs: with `lastRunAt`, when it runs next. */
  everyMs?: number;
  lastRunAt?: number;
  /** The node that ran the last run. */
  lastNode?: string;
  lastOutcome?: 'ok' | 'failed';
  lastError?: string;
  /** Finished runs (a run that succeeded on a retry counts once). */
  runs: number;
  /** Failed runs since the last successful one. */
  consecutiveFailures: number;
}

/** Told when a job has failed `alertAfterFailures` runs in a row, and on each further failed run. */
export type JobAlert = (name: string, error: Error, consecutiveFailures: number) => void;

export interface JobScheduler {
  /** Schedules a job (replacing one of the same name). */
  add(job: JobDefinition): void;
  remove(name: string): void;
  /** Starts running the scheduled jobs (the in-process scheduler runs them from `add` already). */
  start(): Promise<void>;
  outcomes(): Promise<JobOutcome[]>;
  /** Stops scheduling and waits for running jobs to finish (they see their signal aborted). */
  stop(): Promise<void>;
}

const JOB_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function checkJobDefinition(job: JobDefinition): void {
  if (!JOB_NAME.test(job.name)) {
    throw new RangeError(
      `job name must be 1-64 characters of letters, digits, "_" or "-", got "${job.name}"`,
    );
  }
  if (!Number.isInteger(job.everyMs) || job.everyMs <= 0) {
    throw new RangeError(`everyMs of job "${job.name}" must be a positive integer, got ${job.everyMs}`);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
