import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Whether this node can reach Redis now, as the parts with a local fallback (memory, identity,
 * the cost guard, the queues) need to know it: without waiting for a command to time out.
 *
 * Unreachable from the moment the client's connection is not ready, or a command failed with a
 * connection error, until the client is ready again. Emits `lost` and `regained` on changes.
 */
export class RedisReachability extends EventEmitter<{ lost: []; regained: [] }> {
  private failedSince: number | undefined;
  /** Until the first connection, reaching Redis is starting up, not coming back. */
  private everReady: boolean;
  private readonly now: () => number;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
    now?: () => number,
  ) {
    super();
    this.now = now ?? Date.now;
    redis.on('ready', this.onReady);
    redis.on('close', this.onClose);
    this.everReady = redis.status === 'ready';
    if (!this.everReady) this.failedSince = this.now();
  }

  get reachable(): boolean {
    return this.failedSince === undefined;
  }

  /** Epoch ms since when Redis has been unreachable, if it is. */
  get unreachableSince(): number | undefined {
    return this.failedSince;
  }

  /**
   * Called by a fallback with the error an operation failed with: true (and Redis now counts as
   * unreachable) when it is a connection error, false for anything else (a script error, a bad
   * reply), which must not be hidden behind the local log.
   */
  noteFailure(error: unknown): boolean {
    if (!isConnectionError(error)) return false;
    this.markLost((error as Error).message);
    return true;
  }

  /**
   * Runs one operation against Redis: `{ ok: true, value }`, or `{ ok: false }` when it failed
   * because Redis could not be reached (which then counts as unreachable), so the caller serves
   * from its local fallback. Any other error is thrown: it is an answer, not an absence.
   */
  async attempt<T>(operation: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    try {
      return { ok: true, value: await operation() };
    } catch (error) {
      if (!this.noteFailure(error)) throw error;
      return { ok: false };
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.redis.off('ready', this.onReady);
    this.redis.off('close', this.onClose);
  }

  private readonly onReady = () => {
    if (this.failedSince === undefined) return;
    const downForMs = this.now() - this.failedSince;
    this.failedSince = undefined;
    if (this.everReady) this.logger.info({ downForMs }, 'Redis is reachable again');
    this.everReady = true;
    this.emit('regained');
  };

  private readonly onClose = () => this.markLost('connection closed');

  private markLost(reason: string): void {
    if (this.failedSince !== undefined) return;
    this.failedSince = this.now();
    this.logger.warn({ reason }, 'Redis is unreachable; writes go to the local log until it returns');
    this.emit('lost');
    // Another connection failed (BullMQ's own, reconnecting on its own timer) while this client
    // stayed up: no `ready` will come, so ask Redis until it answers.
    if (this.redis.status === 'ready') this.probe();
  }

  private probe(): void {
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (this.failedSince === undefined || this.closed) return;
      this.redis.ping().then(
        () => this.onReady(),
        () => this.probe(),
      );
    }, PROBE_EVERY_MS);
    this.probeTimer.unref();
  }
}

/** While this client is up but another connection failed: how often Redis is asked again. */
const PROBE_EVERY_MS = 1000;

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
]);

/**
 * Errors that say Redis could not be reached (as opposed to Redis refusing a command). ioredis
 * reports them as socket errors, `MaxRetriesPerRequestError` after its retries, or "Connection is
 * closed" / "Stream isn't writeable" when the offline queue is off.
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  if (code && CONNECTION_ERROR_CODES.has(code)) return true;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  // READONLY and MASTERDOWN come from a replica or a primary in a Sentinel failover: the client
  // reconnects to the new primary, so they pass like any other outage.
  return /Connection is closed|Stream isn't writeable|connect ECONNREFUSED|Reached the max retries|All sentinels are unreachable|LOADING|READONLY|MASTERDOWN/.test(
    error.message,
  );
}
