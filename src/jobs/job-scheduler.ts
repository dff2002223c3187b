/**
 * Runs maintenance jobs on a schedule. Embedded mode uses the in-process scheduler below;
 * production swaps in BullMQ job schedulers on Redis so each job runs once across the cluster.
 */
export interface JobDefinition {
  name: string;
  everyMs: number;
  run(signal: AbortSignal): Promise<void>;
}

export interface JobOutcome {
  name: string;
  lastRunAt?: number;
  lastOutcome?: 'ok' | 'failed';
  lastError?: string;
  runs: number;
}

export interface JobScheduler {
  add(job: JobDefinition): void;
  remove(name: string): void;
  outcomes(): JobOutcome[];
  /** Stops scheduling and waits for running jobs to finish (they see their signal aborted). */
  stop(): Promise<void>;
}
