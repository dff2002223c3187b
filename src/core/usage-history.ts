import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { GatewayObserver } from '../providers/gateway/gateway-observer.js';

/** Five-minute buckets over the last 24 hours: 288 per provider. */
export const BUCKET_MS = 5 * 60_000;
export const WINDOW_MS = 24 * 3_600_000;
export const BUCKETS = WINDOW_MS / BUCKET_MS;
/** A Redis bucket outlives the window by an hour, then expires by itself. */
const REDIS_TTL_SECONDS = 25 * 3600;

export interface UsageCounts {
  requests: number;
  errors: number;
  costUsd: number;
}

/** The last 24 hours, oldest bucket first; the last bucket is the current (partial) one. */
export interface UsageSeries {
  bucketMs: number;
  /** Epoch ms where the first bucket starts. */
  from: number;
  /** `cluster`: every node's totals from Redis; `node`: this node's own counts only. */
  source: 'cluster' | 'node';
  /** Why `source` is `node` while Redis is configured (it could not be read). */
  unavailable?: string;
  /** By provider id, one number per bucket. */
  providers: Record<string, { requests: number[]; errors: number[]; costUsd: number[] }>;
}

interface Slot extends UsageCounts {
  bucket: number;
}

export interface UsageHistoryOptions {
  /** With Redis, every node adds its counts to shared hashes (one per bucket). */
  redis?: { client: Redis; keyPrefix: string; reachable?: () => boolean };
  /** How long counts gather before they are added to Redis in one transaction. Default 1 s. */
  writeEveryMs?: number;
  logger?: Logger;
  now?: () => number;
}

/**
 * Requests, errors and cost per provider in five-minute buckets over the last 24 hours, fed by the
 * gateway's observer hooks. This node keeps its own ring in memory; with Redis it also adds to one
 * hash per bucket (`<prefix>:usage:<bucket>`, fields `<provider>:requests|errors|cost`, 25 h TTL),
 * so every node reads the cluster's totals. The counts of up to `writeEveryMs` are added in one
 * transaction: a chart of five-minute buckets does not need a Redis write (and, with
 * `appendfsync always`, an fsync) per request.
 */
export class UsageHistory implements GatewayObserver {
  private readonly rings = new Map<string, (Slot | undefined)[]>();
  private readonly pending = new Set<Promise<unknown>>();
  /** Counts not yet added to Redis, by bucket key and field. */
  private unsent = new Map<string, Map<string, { kind: keyof UsageCounts; amount: number }>>();
  private writeTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private warned = false;

  constructor(private readonly options: UsageHistoryOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  onRequest(provider: string): void {
    this.add(provider, 'requests', 1);
  }

  onError(provider: string): void {
    this.add(provider, 'errors', 1);
  }

  onLatency(): void {}

  onUsage(provider: string, usage: { usd: number }): void {
    if (usage.usd > 0) this.add(provider, 'costUsd', usage.usd);
  }

  /** Adds the gathered counts to Redis now, and waits for every write made so far (tests, shutdown). */
  async flush(): Promise<void> {
    this.writeGathered();
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** The cluster's series from Redis when it answers, else this node's own. */
  async series(): Promise<UsageSeries> {
    const redis = this.options.redis;
    if (!redis) return this.localSeries();
    if (redis.reachable?.() === false) return { ...this.localSeries(), unavailable: 'Redis is unreachable' };
    try {
      return await this.redisSeries(redis.client, redis.keyPrefix);
    } catch (error) {
      return { ...this.localSeries(), unavailable: (error as Error).message };
    }
  }

  /** This node's own counts. */
  localSeries(): UsageSeries {
    const first = this.bucketOf(this.now()) - BUCKETS + 1;
    const providers: UsageSeries['providers'] = {};
    for (const [provider, ring] of this.rings) {
      const line = emptyLine();
      for (const slot of ring) {
        if (!slot) continue;
        const i = slot.bucket - first;
        if (i < 0 || i >= BUCKETS) continue;
        line.requests[i] = slot.requests;
        line.errors[i] = slot.errors;
        line.costUsd[i] = slot.costUsd;
      }
      providers[provider] = line;
    }
    return { bucketMs: BUCKET_MS, from: first * BUCKET_MS, source: 'node', providers };
  }

  private async redisSeries(client: Redis, keyPrefix: string): Promise<UsageSeries> {
    const first = this.bucketOf(this.now()) - BUCKETS + 1;
    const pipeline = client.pipeline();
    for (let i = 0; i < BUCKETS; i++) pipeline.hgetall(`${keyPrefix}:usage:${first + i}`);
    const results = (await pipeline.exec()) ?? [];
    const providers: UsageSeries['providers'] = {};
    results.forEach(([error, hash], i) => {
      if (error) throw error;
      for (const [field, value] of Object.entries((hash ?? {}) as Record<string, string>)) {
        const split = field.lastIndexOf(':');
        const provider = field.slice(0, split);
        const kind = FIELD_KINDS[field.slice(split + 1)];
        if (!kind) continue;
        providers[provider] ??= emptyLine();
        (providers[provider] as ReturnType<typeof emptyLine>)[kind][i] = Number(value);
      }
    });
    return { bucketMs: BUCKET_MS, from: first * BUCKET_MS, source: 'cluster', providers };
  }

  private bucketOf(ms: number): number {
    return Math.floor(ms / BUCKET_MS);
  }

  private add(provider: string, kind: keyof UsageCounts, amount: number): void {
    const bucket = this.bucketOf(this.now());
    let ring = this.rings.get(provider);
    if (!ring) {
      ring = new Array<Slot | undefined>(BUCKETS);
      this.rings.set(provider, ring);
    }
    const index = bucket % BUCKETS;
    let slot = ring[index];
    if (!slot || slot.bucket !== bucket) {
      slot = { bucket, requests: 0, errors: 0, costUsd: 0 };
      ring[index] = slot;
    }
    slot[kind] += amount;
    this.write(provider, kind, amount, bucket);
  }

  private write(provider: string, kind: keyof UsageCounts, amount: number, bucket: number): void {
    const redis = this.options.redis;
    // While Redis is away, the cluster totals miss this node's counts; its own ring keeps them.
    if (!redis || redis.reachable?.() === false) return;
    const key = `${redis.keyPrefix}:usage:${bucket}`;
    const field = `${provider}:${FIELD_NAMES[kind]}`;
    let fields = this.unsent.get(key);
    if (!fields) {
      fields = new Map();
      this.unsent.set(key, fields);
    }
    const gathered = fields.get(field);
    if (gathered) gathered.amount += amount;
    else fields.set(field, { kind, amount });
    if (!this.writeTimer) {
      this.writeTimer = setTimeout(() => this.writeGathered(), this.options.writeEveryMs ?? 1000);
      this.writeTimer.unref();
    }
  }

  private writeGathered(): void {
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    const redis = this.options.redis;
    if (!redis || this.unsent.size === 0) return;
    const unsent = this.unsent;
    this.unsent = new Map();
    const multi = redis.client.multi();
    for (const [key, fields] of unsent) {
      for (const [field, { kind, amount }] of fields) {
        if (kind === 'costUsd') multi.hincrbyfloat(key, field, amount);
        else multi.hincrby(key, field, amount);
      }
      multi.expire(key, REDIS_TTL_SECONDS);
    }
    const write = multi.exec().catch((error: unknown) => {
      if (!this.warned) {
        this.warned = true;
        this.options.logger?.warn(
          { err: (error as Error).message },
          'could not add provider usage to Redis; the dashboard chart shows this node only until it answers',
        );
      }
    });
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }
}

const FIELD_NAMES: Record<keyof UsageCounts, string> = {
  requests: 'requests',
  errors: 'errors',
  costUsd: 'cost',
};
const FIELD_KINDS: Record<string, keyof UsageCounts> = {
  requests: 'requests',
  errors: 'errors',
  cost: 'costUsd',
};

function emptyLine(): { requests: number[]; errors: number[]; costUsd: number[] } {
  return {
    requests: new Array<number>(BUCKETS).fill(0),
    errors: new Array<number>(BUCKETS).fill(0),
    costUsd: new Array<number>(BUCKETS).fill(0),
  };
}
