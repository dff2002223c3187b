import type { Logger } from 'pino';

export interface IncidentsOptions {
  /** Sends one message to the owners; `id` names it once (the outbox drops a repeated id). */
  deliver: (id: string, text: string) => Promise<void>;
  /**
   * Takes the right to report an incident across the cluster (Redis `SET NX`), so two nodes that
   * both see it send one message. Resolves true when this node reports it; rejects when Redis
   * cannot say, and this node then reports it itself (a duplicate beats silence).
   */
  claim?: (key: string, ttlMs: number) => Promise<boolean>;
  /** Gives the claim up once the incident is over, so the next one is reported again. */
  release?: (key: string) => Promise<void>;
  /** "agent on node-a": who is speaking, at the start of every message. */
  source: string;
  logger: Logger;
  now?: () => number;
}

interface OpenIncident {
  since: number;
  /** Whether this node sent the opening message (and so sends the recovery). */
  reported: boolean;
}

/** How long a claim outlives a node that died holding an open incident. */
const CLAIM_TTL_MS = 6 * 60 * 60_000;

/**
 * Operational incidents for the owners: one message when a condition starts (a provider's breaker
 * stays open, a channel stays down, a node dies, Redis is unreachable), one when it ends, and
 * nothing in between however often it is seen. One-off events (a budget passing 80%, a wallet
 * transfer failing) are `notice`s: one message each.
 */
export class Incidents {
  private readonly open = new Map<string, OpenIncident>();
  private readonly now: () => number;

  constructor(private readonly options: IncidentsOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Open incidents, for `/status`: key and since when. */
  list(): { key: string; since: number }[] {
    return [...this.open].map(([key, incident]) => ({ key, since: incident.since }));
  }

  /** The condition `key` holds now: reported once, when it starts. */
  async raise(key: string, text: string): Promise<void> {
    if (this.open.has(key)) return;
    const incident: OpenIncident = { since: this.now(), reported: false };
    this.open.set(key, incident);
    incident.reported = await this.mayReport(key);
    this.options.logger.warn({ incident: key, reported: incident.reported }, text);
    if (incident.reported) await this.send(`incident:${key}:${incident.since}:open`, `${text}`);
  }

  /** The condition `key` no longer holds: one recovery message if its start was reported here. */
  async clear(key: string, text: string): Promise<void> {
    const incident = this.open.get(key);
    if (!incident) return;
    this.open.delete(key);
    const minutes = Math.max(1, Math.round((this.now() - incident.since) / 60_000));
    this.options.logger.info({ incident: key }, text);
    if (!incident.reported) return;
    await this.options.release?.(key).catch(() => {});
    await this.send(`incident:${key}:${incident.since}:closed`, `${text} (after about ${minutes} min)`);
  }

  /** A one-off event: one message, named by `id` so a repeat of the same event is dropped. */
  async notice(id: string, text: string): Promise<void> {
    // The event itself is logged where it happens; this records that the owners are told.
    this.options.logger.info({ notice: id }, 'alert queued for the owners');
    await this.send(`notice:${id}`, text);
  }

  private async mayReport(key: string): Promise<boolean> {
    if (!this.options.claim) return true;
    try {
      return await this.options.claim(key, CLAIM_TTL_MS);
    } catch {
      return true;
    }
  }

  private async send(id: string, text: string): Promise<void> {
    await this.options
      .deliver(id, `${this.options.source}: ${text}`)
      .catch((error: unknown) =>
        this.options.logger.error(
          { alert: id, err: (error as Error).message },
          'could not queue an alert for the owners',
        ),
      );
  }
}
