import type { Logger } from 'pino';
import type { OutageHold } from './outage-holds.js';
import type { LeaseTerm, RedisLease } from './redis-lease.js';

/** What runs under a lease: started when this node gains it, stopped when it loses it. */
export interface LeaseHandlers {
  acquired(term: LeaseTerm): Promise<void>;
  /** Must stop acting under the lease before it resolves. */
  lost(reason: string): Promise<void>;
}

/** The view of a lease that the code acting under it needs. */
export interface HeldLease {
  readonly name: string;
  /** The term this node holds, if any. */
  readonly term: LeaseTerm | undefined;
  /**
   * The fencing check before an action: true only if this node's term is still the current one
   * in Redis. A node that was paused past its TTL learns here that it was superseded.
   */
  confirm(): Promise<boolean>;
}

export interface LeaseKeeperOptions {
  node: string;
  instance: string;
  ttlMs: number;
  logger: Logger;
  /** Keeps the term through a Redis outage while the other nodes promise over the mesh. */
  outageHold?: OutageHold;
  now?: () => number;
}

/**
 * Keeps one lease: contends for it while another node holds it (trying again the moment it can
 * have expired, or at once when its holder announces a release), renews it every quarter TTL
 * while held, and hands over on `stop()`.
 *
 * A holder that has not renewed within the TTL (Redis unreachable, or this process paused) gives
 * the term up on its own: by then the key may have expired and another node may hold it, and
 * stepping down first is what keeps two nodes from serving a platform at once, unless every
 * other node promises over the mesh that it cannot take the lease either (`OutageHold`). A Redis
 * restart keeps the term (the renewal restores it while no one else acquired).
 */
export class LeaseKeeper implements HeldLease {
  readonly name: string;
  private held: LeaseTerm | undefined;
  private handlers: LeaseHandlers | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Until `start()`: nothing may be acquired before there is something to run under it. */
  private stopped = true;
  /** Acquisition, loss and stop never overlap. */
  private transition: Promise<void> = Promise.resolve();
  private redisFailing = false;
  /** Until when the current term is certainly ours: the start of its last renewal plus the TTL. */
  private validUntil = 0;
  /** After a hand-over: no contending before this. */
  private pausedUntil = 0;
  private readonly now: () => number;

  constructor(
    private readonly lease: RedisLease,
    private readonly options: LeaseKeeperOptions,
  ) {
    this.name = lease.name;
    this.now = options.now ?? Date.now;
  }

  get term(): LeaseTerm | undefined {
    return this.held;
  }

  /** Starts contending; resolves after the first attempt (and the start it triggered, if won). */
  async start(handlers: LeaseHandlers): Promise<void> {
    this.handlers = handlers;
    this.stopped = false;
    const failure = await this.tick();
    if (failure) throw failure;
  }

  /** Another node released this lease: try now rather than at the next scheduled attempt. */
  wake(): void {
    if (this.stopped || this.held || this.now() < Math.max(this.pausedUntil, this.blockedUntil())) return;
    this.schedule(0);
  }

  async confirm(): Promise<boolean> {
    const term = this.held;
    if (!term) return false;
    // The loss is started, not awaited: the work asking is often what the loss must stop (an
    // adapter's stop waits for the events it has in hand), and waiting would deadlock.
    if (this.now() >= this.validUntil) {
      this.loseLater(term, 'not renewed within the lease TTL');
      return false;
    }
    // Redis away: the term is ours until `validUntil` (a renewal's TTL, or the peers' promise).
    if (this.options.outageHold && !this.options.outageHold.redisReachable()) return true;
    if (await this.lease.confirm(term)) return true;
    this.loseLater(term, 'superseded by another node');
    return false;
  }

  /** Stops what runs under the lease, then releases it so another node takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.releaseHeld('this node is stopping');
  }

  /**
   * Gives the lease to another node (this one cannot serve it well, e.g. it cannot reach the
   * platform) and stays out of the contest for `pauseMs`, after which it contends again: if no
   * other node took it meanwhile, this one serves it again.
   */
  async handOver(reason: string, pauseMs: number): Promise<void> {
    if (this.stopped || !this.held) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pausedUntil = this.now() + pauseMs;
    await this.releaseHeld(reason);
    this.schedule(pauseMs);
  }

  private releaseHeld(reason: string): Promise<void> {
    return this.serially(async () => {
      const term = this.held;
      if (!term) return;
      // Still ours while what runs under it stops: events already in hand are accepted (the
      // fencing check passes) rather than dropped, and only then does the other node take over.
      await this.handlers?.lost(reason);
      this.held = undefined;
      await this.lease
        .release(term)
        .catch((error: unknown) =>
          this.options.logger.warn(
            { lease: this.name, err: (error as Error).message },
            'could not release the lease; it expires by itself',
          ),
        );
    });
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), Math.max(0, delayMs));
    this.timer.unref();
  }

  /** One renewal or acquisition attempt; resolves with the error if what runs under it failed to start. */
  private async tick(): Promise<Error | undefined> {
    if (this.stopped) return undefined;
    const { ttlMs } = this.options;
    const term = this.held;
    const attemptAt = this.now();
    const hold = this.options.outageHold;
    if (term && hold && !hold.redisReachable()) {
      // Not waiting for a renewal to time out: ask the peers before the term can run out, and
      // come back no later than its end, to step down on time if no promise came.
      await this.holdThroughOutage(term, hold);
      this.schedule(Math.max(0, Math.min(ttlMs / 4, this.validUntil - this.now())));
      return undefined;
    }
    try {
      if (term) {
        if (await this.lease.renew(term)) {
          this.validUntil = attemptAt + ttlMs;
          this.recovered();
          this.schedule(ttlMs / 4);
        } else {
          await this.lose(term, 'taken over by another node');
          this.schedule(0);
        }
        return undefined;
      }
      const notBefore = Math.max(this.pausedUntil, this.blockedUntil());
      if (attemptAt < notBefore) {
        this.schedule(notBefore - attemptAt);
        return undefined;
      }
      const result = await this.lease.acquire(this.options.node, this.options.instance, attemptAt);
      this.recovered();
      if (result.acquired) {
        this.validUntil = attemptAt + ttlMs;
        const failure = await this.gain(result.term).then(
          () => undefined,
          (error: unknown) => error as Error,
        );
        if (failure) {
          // It cannot start here (bad configuration): leave the lease to the other nodes.
          this.options.logger.error({ lease: this.name, err: failure }, 'could not start under the lease');
          this.stopped = true;
          return failure;
        }
        this.schedule(ttlMs / 4);
      } else {
        // Try again the moment the holder's term can have run out (its renewals push this out).
        this.schedule(Math.min(result.expiresInMs + 5, ttlMs / 2));
      }
    } catch (error) {
      if (!this.redisFailing) {
        this.redisFailing = true;
        this.options.logger.warn(
          { lease: this.name, held: this.held !== undefined, err: (error as Error).message },
          this.held
            ? 'cannot renew the lease (Redis unreachable); giving it up if this lasts the TTL'
            : 'cannot contend for the lease',
        );
      }
      const held = this.held;
      // Step down once the term may have expired: another node may hold it by now.
      if (held && this.now() >= this.validUntil) await this.lose(held, 'not renewed within the lease TTL');
      this.schedule(ttlMs / 4);
    }
    return undefined;
  }

  /**
   * Redis is unreachable while this node holds the term: it keeps the term as long as every other
   * node promises not to take it, and steps down once the term may have run out otherwise.
   */
  private async holdThroughOutage(term: LeaseTerm, hold: OutageHold): Promise<void> {
    if (!this.redisFailing) {
      this.redisFailing = true;
      this.options.logger.warn(
        { lease: this.name },
        'Redis unreachable; keeping the lease only while the other nodes promise over the mesh not to take it',
      );
    }
    const until = await hold.extend(this.name, this.options.ttlMs).catch(() => undefined);
    if (until !== undefined && this.held === term) this.validUntil = Math.max(this.validUntil, until);
    if (this.held === term && this.now() >= this.validUntil)
      await this.lose(term, 'not renewed within the lease TTL, and no promise from the other nodes');
  }

  /** A promise this node gave (not to take the lease while Redis was away) that still runs. */
  private blockedUntil(): number {
    return this.options.outageHold?.blockedUntil(this.name) ?? 0;
  }

  private recovered(): void {
    if (!this.redisFailing) return;
    this.redisFailing = false;
    this.options.logger.info({ lease: this.name }, 'Redis answers the lease again');
  }

  private gain(term: LeaseTerm): Promise<void> {
    return this.serially(async () => {
      if (this.stopped) {
        await this.lease.release(term).catch(() => {});
        return;
      }
      this.held = term;
      this.options.logger.info({ lease: this.name, fence: term.holder.fence }, 'lease acquired');
      try {
        await this.handlers?.acquired(term);
      } catch (error) {
        // What runs under the lease could not start here: let another node have it.
        this.held = undefined;
        await this.lease.release(term).catch(() => {});
        throw error;
      }
    });
  }

  private loseLater(term: LeaseTerm, reason: string): void {
    this.lose(term, reason).catch((error: unknown) =>
      this.options.logger.error(
        { lease: this.name, err: (error as Error).message },
        'stopping under a lost lease failed',
      ),
    );
  }

  private lose(term: LeaseTerm, reason: string): Promise<void> {
    return this.serially(async () => {
      if (this.held !== term) return;
      this.held = undefined;
      this.options.logger.warn({ lease: this.name, fence: term.holder.fence, reason }, 'lease lost');
      await this.handlers?.lost(reason);
    });
  }

  private serially(step: () => Promise<void>): Promise<void> {
    const next = this.transition.then(step);
    this.transition = next.catch(() => {});
    return next;
  }
}
