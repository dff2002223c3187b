import { type Job, Queue, Worker } from 'bullmq';
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { dropConnection } from './drop-connection.js';
import {
  checkJobDefinition,
  errorMessage,
  type JobAlert,
  type JobDefinition,
  type JobOutcome,
  type JobRun,
  type JobScheduler,
} from './job-scheduler.js';
import { RedisJobOutcomes } from './redis-job-outcomes.js';
import { RedisRunLock } from './redis-run-lock.js';

export interface BullMqJobSchedulerOptions {
  /**
   * ioredis options for BullMQ's own connections (it takes options, not a client), such as
   * `redisConnectionOptions(config.redis)`; the worker's copy gets `maxRetriesPerRequest: null`,
   * as BullMQ requires, the queue's `2`.
   */
  connection: RedisOptions;
  /** The agent's client, for the shared outcomes and the run locks. It stays the caller's. */
  redis: Redis;
  /** The agent's `redis.keyPrefix`; BullMQ's keys go under `<keyPrefix>:bull`. */
  keyPrefix: string;
  /** This node's name in outcomes and logs. */
  nodeId: string;
  logger: Logger;
  /** Default "maintenance". */
  queueName?: string;
  /** Tries per run, the first included, before the run counts as failed. Default 3. */
  attempts?: number;
  /** Delay before a run's first retry; it doubles for each further one. Default 5000 ms. */
  backoffMs?: number;
  /** Failed runs in a row that call `onAlert`. Default 3. */
  alertAfterFailures?: number;
  /** Called at `alertAfterFailures` failed runs in a row, and on each further one. Default: none. */
  onAlert?: JobAlert;
  /** Different jobs run at once on this node (one run per job across the cluster). Default 4. */
  concurrency?: number;
  /** How long a run lock outlives a node that died mid-run. Default 30 s. */
  lockTtlMs?: number;
  /**
   * Whether Redis answers now. While it does not, `stop` drops the connections instead of
   * closing them politely (a QUIT would wait for Redis to return). Default: always.
   */
  reachable?: () => boolean;
}

const RESYNC_AFTER_MS = 5000;

/**
 * Jobs that run once across every node on one Redis: each job is a BullMQ job scheduler
 * (`upsertJobScheduler(name, { every })`) on one queue, and every node runs a worker on it, so
 * each scheduled run is taken by exactly one node (whichever is free first); a node that dies
 * mid-run has its run finished by another after BullMQ's stalled-job check. A failed run is
 * retried with exponential back-off (`attempts`, `backoffMs`). A run lock in Redis keeps two
 * runs of one job from overlapping when a run outlasts its period: the later one skips its turn.
 * Outcomes live in one Redis hash, so `/status` on every node shows the same.
 *
 * Every node must define the same jobs: a node given a run of a job it does not know fails that
 * try (it is retried, maybe on a node that knows it). `remove` removes the job for every node.
 */
export class BullMqJobScheduler implements JobScheduler {
  private readonly definitions = new Map<string, JobDefinition>();
  /** Made on first use, so building an agent opens no connection before it starts. */
  private queueInstance: Queue | undefined;
  private worker: Worker | undefined;
  private readonly abort = new AbortController();
  private readonly outcomeStore: RedisJobOutcomes;
  private readonly lock: RedisRunLock;
  private readonly queueName: string;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly alertAfter: number;
  private readonly logger: Logger;
  /** Upserts and removals, one after another in call order. */
  private syncing: Promise<void> = Promise.resolve();
  private readonly resyncTimers = new Set<NodeJS.Timeout>();
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: BullMqJobSchedulerOptions) {
    this.queueName = options.queueName ?? 'maintenance';
    this.attempts = positiveInteger('attempts', options.attempts ?? 3);
    this.backoffMs = positiveInteger('backoffMs', options.backoffMs ?? 5000);
    this.alertAfter = positiveInteger('alertAfterFailures', options.alertAfterFailures ?? 3);
    positiveInteger('concurrency', options.concurrency ?? 4);
    const lockTtlMs = positiveInteger('lockTtlMs', options.lockTtlMs ?? 30_000);
    this.logger = options.logger.child({ component: 'jobs', node: options.nodeId });
    this.outcomeStore = new RedisJobOutcomes(options.redis, options.keyPrefix);
    this.lock = new RedisRunLock({
      redis: options.redis,
      keyPrefix: options.keyPrefix,
      ttlMs: lockTtlMs,
      logger: this.logger,
    });
  }

  add(definition: JobDefinition): void {
    checkJobDefinition(definition);
    this.definitions.set(definition.name, definition);
    if (this.started) this.sync(definition.name);
  }

  remove(name: string): void {
    this.definitions.delete(name);
    this.sync(name);
  }

  /** Starts this node's worker and schedules the jobs added so far. Redis errors are logged and retried. */
  async start(): Promise<void> {
    if (this.started || this.stopping) return;
    this.started = true;
    const worker = new Worker(
      this.queueName,
      (job: Job, _token?: string, signal?: AbortSignal) => this.process(job, signal),
      {
        connection: { ...this.options.connection, maxRetriesPerRequest: null },
        prefix: `${this.options.keyPrefix}:bull`,
        concurrency: this.options.concurrency ?? 4,
      },
    );
    worker.on('error', (error) => this.logQuietlyWhileAway(error, 'job worker error'));
    this.worker = worker;
    for (const name of this.definitions.keys()) this.sync(name);
    await this.syncing;
  }

  async outcomes(): Promise<JobOutcome[]> {
    const stored = await this.outcomeStore.read([...this.definitions.keys()]);
    return stored.map((outcome) => ({
      ...outcome,
      scope: 'cluster' as const,
      ...(this.definitions.has(outcome.name)
        ? { everyMs: (this.definitions.get(outcome.name) as JobDefinition).everyMs }
        : {}),
    }));
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const timer of this.resyncTimers) clearTimeout(timer);
      this.resyncTimers.clear();
      this.abort.abort(new Error('the job scheduler is stopping'));
      // Waits for running jobs; an aborted run goes back to BullMQ and is retried on another node.
      // With Redis away nothing can be handed back: the connections are dropped, and a run left
      // active is taken up again once its lock lapses.
      const away = this.options.reachable?.() === false;
      await this.worker?.close(away);
      // A schedule update waits for Redis to connect at all: with Redis away it is left behind.
      if (!away) await this.syncing;
      if (away && this.queueInstance) await dropConnection(this.queueInstance);
      else await this.queueInstance?.close();
    })();
    return this.stopping;
  }

  /** While Redis is known to be away (that is logged once), each reconnect error is detail. */
  private logQuietlyWhileAway(error: Error, message: string): void {
    const away = this.options.reachable?.() === false;
    this.logger[away ? 'debug' : 'warn']({ err: error.message }, message);
  }

  private get queue(): Queue {
    if (!this.queueInstance) {
      this.queueInstance = new Queue(this.queueName, {
        // Fail a schedule update soon while Redis is away (it is retried), so `stop` cannot hang on it.
        connection: { ...this.options.connection, maxRetriesPerRequest: 2 },
        prefix: `${this.options.keyPrefix}:bull`,
      });
      this.queueInstance.on('error', (error) => this.logQuietlyWhileAway(error, 'job queue error'));
    }
    return this.queueInstance;
  }

  /** Makes BullMQ's job scheduler for `name` match this node's definition (or its absence). */
  private sync(name: string): void {
    this.syncing = this.syncing.then(async () => {
      if (this.stopping) return;
      const definition = this.definitions.get(name);
      try {
        if (definition) {
          await this.queue.upsertJobScheduler(
            name,
            { every: definition.everyMs },
            {
              name,
              opts: {
                attempts: this.attempts,
                backoff: { type: 'exponential', delay: this.backoffMs },
                removeOnComplete: { count: 20 },
                removeOnFail: { count: 50 },
              },
            },
          );
        } else {
          await this.queue.removeJobScheduler(name);
        }
      } catch (error) {
        this.logger.warn(
          { job: name, err: errorMessage(error) },
          'could not update a job schedule; retrying',
        );
        const timer = setTimeout(() => {
          this.resyncTimers.delete(timer);
          this.sync(name);
        }, RESYNC_AFTER_MS);
        timer.unref();
        this.resyncTimers.add(timer);
      }
    });
  }

  private async process(job: Job, bullSignal: AbortSignal | undefined): Promise<void> {
    const definition = this.definitions.get(job.name);
    if (!definition) throw new Error(`job "${job.name}" is not scheduled on node ${this.options.nodeId}`);
    const { nodeId } = this.options;
    const lock = await this.lock.acquire(job.name, nodeId);
    if (!lock) {
      this.logger.debug({ job: job.name }, 'job still running elsewhere; this turn is skipped');
      return;
    }
    const run: JobRun = { scheduledAt: slotOf(job), attempt: job.attemptsMade + 1, node: nodeId };
    const signals = [this.abort.signal, lock.signal];
    if (bullSignal) signals.push(bullSignal);
    // Outcomes are recorded before the lock is released, so they are in the order of the runs.
    try {
      await definition.run(AbortSignal.any(signals), run);
      await this.outcomeStore.recordSuccess(definition.name, nodeId, Date.now()).catch((error: unknown) => {
        this.logger.warn(
          { job: definition.name, err: errorMessage(error) },
          'could not record a job outcome',
        );
      });
    } catch (error) {
      // Stopping is not a failed run: BullMQ retries it, on a node that is not stopping.
      if (!this.abort.signal.aborted) await this.onFailure(definition.name, run, job, error);
      throw error;
    } finally {
      await lock.release();
    }
  }

  private async onFailure(name: string, run: JobRun, job: Job, error: unknown): Promise<void> {
    const message = errorMessage(error);
    if (run.attempt < (job.opts.attempts ?? 1)) {
      this.logger.warn({ job: name, attempt: run.attempt, err: message }, 'job run failed; retrying');
      return;
    }
    this.logger.warn({ job: name, attempt: run.attempt, err: message }, 'job run failed');
    let failures: number;
    try {
      failures = await this.outcomeStore.recordFailure(name, run.node, Date.now(), message);
    } catch (recordError) {
      this.logger.warn({ job: name, err: errorMessage(recordError) }, 'could not record a job outcome');
      return;
    }
    if (failures < this.alertAfter) return;
    try {
      this.options.onAlert?.(name, error instanceof Error ? error : new Error(message), failures);
    } catch {
      // An alert that fails must not change the job's outcome.
    }
  }
}

/** The slot of a scheduler's job: its id is `repeat:<scheduler>:<millis>`. */
function slotOf(job: Job): number {
  const match = /:(\d+)$/.exec(job.id ?? '');
  return match ? Number(match[1]) : job.timestamp;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  }
  return value;
}
