import type { Logger } from 'pino';
import { z } from 'zod';
import type { ClusterView } from './cluster.js';

/** What a holder asks a peer over the mesh while neither reaches Redis. */
export const holdRequestSchema = z
  .object({
    lease: z.string().min(1).max(200),
    node: z.string().min(1).max(64),
    ms: z.number().int().min(1).max(60_000),
  })
  .strict();

export type HoldRequest = z.infer<typeof holdRequestSchema>;

export interface HoldAnswer {
  promised: boolean;
  reason?: string;
}

/** The part of a lease keeper that asks: may it keep its term while Redis is away? */
export interface OutageHold {
  /** Whether this node reaches Redis now (when it does, leases are renewed there as usual). */
  redisReachable(): boolean;
  /**
   * Asks every other node for a promise not to take `lease` for `ms`. Resolves to the time (this
   * node's clock) until which this node may keep the term, or undefined when any node could not
   * promise (it reaches Redis, it cannot be asked, or it did not answer).
   */
  extend(lease: string, ms: number): Promise<number | undefined>;
  /** Before this time (this node's clock) this node must not take `lease`: it promised. */
  blockedUntil(lease: string): number;
}

export interface OutageHoldsOptions {
  node: string;
  /** The last cluster view: which peers to ask, and where (their `advertiseUrl`). */
  view: () => ClusterView;
  redisReachable: () => boolean;
  /** Whether this node holds `lease` now (it then cannot promise to leave it alone). */
  holds: (lease: string) => boolean;
  /**
   * The bearer token peers accept (the HTTP channel's first auth token), if they require one; read
   * per request, so a token rotated through Vault is used from the next request.
   */
  token?: () => string | undefined;
  /** The lease TTL: a new process keeps out of every lease this long (see `blockedUntil`). */
  ttlMs: number;
  logger: Logger;
  fetch?: typeof fetch;
  now?: () => number;
}

/**
 * Keeps platform connections served while Redis is unreachable, without ever letting two nodes
 * serve one platform.
 *
 * Normally a holder that cannot renew its lease steps down once the lease TTL has passed, since
 * another node may have taken the lease in Redis by then. But if every other node says over the
 * mesh that it cannot reach Redis either, and promises not to take the lease for a while, no one
 * can take it: the holder keeps its term until that promise ends, and asks again before then.
 *
 * - A node promises only while it cannot reach Redis and does not hold the lease itself, and keeps
 *   its promise even if Redis comes back meanwhile (it contends only after it ends). The holder's
 *   term, renewed in Redis as soon as Redis answers it, is then restored before anyone contends.
 * - The holder counts the promise from the moment it ASKED, minus a margin: durations, not clock
 *   readings, cross the mesh, so clocks that disagree do not matter.
 * - A promise lives in memory. A process that starts keeps out of every lease for one TTL (the
 *   longest promise), so a promise its previous process gave is honoured across a restart.
 * - A peer that cannot be asked (down, or the mesh cut as well) makes the holder step down as
 *   before: with both Redis and the other node out of reach, platform connections pause (the
 *   HTTP channel keeps serving) rather than risk being served twice.
 */
export class OutageHolds implements OutageHold {
  private readonly promised = new Map<string, number>();
  private readonly startedAt: number;
  private readonly now: () => number;

  constructor(private readonly options: OutageHoldsOptions) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
  }

  redisReachable(): boolean {
    return this.options.redisReachable();
  }

  blockedUntil(lease: string): number {
    return Math.max(this.startedAt + this.options.ttlMs, this.promised.get(lease) ?? 0);
  }

  /** A peer's request: promise not to take `lease` for `ms`, if this node may. */
  promise(request: HoldRequest): HoldAnswer {
    if (this.options.redisReachable()) return { promised: false, reason: 'this node reaches Redis' };
    if (this.options.holds(request.lease)) return { promised: false, reason: 'this node holds the lease' };
    const until = this.now() + request.ms;
    this.promised.set(request.lease, Math.max(this.promised.get(request.lease) ?? 0, until));
    return { promised: true };
  }

  async extend(lease: string, ms: number): Promise<number | undefined> {
    const askedAt = this.now();
    const peers = this.options.view().nodes.filter((n) => !n.self);
    const timeoutMs = Math.max(100, Math.min(1000, ms / 4));
    const answers = await Promise.all(peers.map((peer) => this.ask(peer.advertiseUrl, lease, ms, timeoutMs)));
    const refused = answers.findIndex((a) => !a.promised);
    if (refused !== -1) {
      this.options.logger.debug(
        { lease, peer: peers[refused]?.node, reason: answers[refused]?.reason },
        'no promise to hold the lease while Redis is away',
      );
      return undefined;
    }
    // A tenth of the promise is left for the time the answer took and for timer lateness.
    return askedAt + ms - Math.ceil(ms / 10);
  }

  private async ask(
    advertiseUrl: string | undefined,
    lease: string,
    ms: number,
    timeoutMs: number,
  ): Promise<HoldAnswer> {
    if (!advertiseUrl) return { promised: false, reason: 'the peer has no advertiseUrl' };
    const doFetch = this.options.fetch ?? fetch;
    const token = this.options.token?.();
    try {
      const response = await doFetch(new URL('/api/cluster/hold', advertiseUrl), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ lease, node: this.options.node, ms } satisfies HoldRequest),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) {
        void response.body?.cancel();
        return { promised: false, reason: `HTTP ${response.status}` };
      }
      const answer = (await response.json()) as HoldAnswer;
      return { promised: answer.promised === true, ...(answer.reason ? { reason: answer.reason } : {}) };
    } catch (error) {
      return { promised: false, reason: (error as Error).message };
    }
  }
}
