import type { Redis } from 'ioredis';
import { type IntentStatus, type TransferIntent, UNFINISHED_STATUSES } from '../transfer-intent.js';
import {
  type AuthorizeResult,
  type CapCheck,
  decideAuthorization,
  type WalletStore,
} from './wallet-store.js';

export interface RedisWalletStoreOptions {
  redis: Redis;
  keyPrefix: string;
}

/** Statuses an intent can still leave: kept in an index so recovery never scans all history. */
const OPEN_STATUSES: ReadonlySet<IntentStatus> = new Set(['pending_approval', ...UNFINISHED_STATUSES]);

/** Optimistic transactions retry on a conflicting write; more than this means something is wrong. */
const MAX_CONFLICTS = 50;

/**
 * Intents in Redis, shared by both servers. Each change is a WATCH/MULTI transaction on a
 * connection of its own (WATCH belongs to a connection, and the shared one carries everyone's
 * commands): the status compare-and-set and the cap check read and write in one atomic step,
 * and amounts stay bigint in this process rather than doubles in a Lua script.
 */
export class RedisWalletStore implements WalletStore {
  readonly backend = 'redis' as const;
  private tx: Redis | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: RedisWalletStoreOptions) {}

  async open(): Promise<void> {
    this.tx = this.options.redis.duplicate();
    this.tx.on('error', () => {}); // Its failures surface as rejected calls, which refuse.
  }

  async close(): Promise<void> {
    await this.chain.catch(() => {});
    await this.tx?.quit().catch(() => this.tx?.disconnect());
  }

  async create(intent: TransferIntent): Promise<void> {
    const created = await this.options.redis
      .multi()
      .set(this.intentKey(intent.id), JSON.stringify(intent), 'NX')
      .zadd(this.key('all'), intent.createdAt, intent.id)
      .zadd(this.key('open'), intent.createdAt, intent.id)
      .exec();
    if (created?.[0]?.[1] !== 'OK') throw new Error(`intent ${intent.id} exists or was not stored`);
  }

  async get(id: string): Promise<TransferIntent | undefined> {
    const text = await this.options.redis.get(this.intentKey(id));
    return text ? (JSON.parse(text) as TransferIntent) : undefined;
  }

  transition(
    id: string,
    from: readonly IntentStatus[],
    patch: Partial<TransferIntent> & { status: IntentStatus },
  ): Promise<TransferIntent | undefined> {
    return this.optimistic([this.intentKey(id)], async (tx) => {
      const current = await this.read(tx, id);
      if (!current || !from.includes(current.status)) return { done: undefined };
      const next: TransferIntent = { ...current, ...patch, id };
      return { done: next, writes: (m) => this.writeIntent(m, next) };
    });
  }

  authorize(
    id: string,
    from: readonly IntentStatus[],
    caps: CapCheck,
    patch: Partial<TransferIntent>,
    now: number,
  ): Promise<AuthorizeResult> {
    const spendKey = this.key(`authorized:${caps.token}`);
    return this.optimistic<AuthorizeResult>([this.intentKey(id), spendKey], async (tx) => {
      const result = await decideAuthorization(await this.read(tx, id), from, caps, patch, now, async () => {
        const ids = await tx.zrangebyscore(spendKey, now - caps.windowMs, '+inf');
        const texts = ids.length > 0 ? await tx.mget(...ids.map((i) => this.intentKey(i))) : [];
        return texts.flatMap((t) => (t ? [JSON.parse(t) as TransferIntent] : []));
      });
      if (!result.ok) return { done: result };
      return {
        done: result,
        writes: (m) => {
          this.writeIntent(m, result.intent);
          m.zadd(spendKey, now, id);
          m.zremrangebyscore(spendKey, '-inf', now - caps.windowMs - 1);
        },
      };
    });
  }

  async recent(limit: number): Promise<TransferIntent[]> {
    const ids = await this.options.redis.zrevrange(this.key('all'), 0, limit - 1);
    return this.load(ids);
  }

  async withStatus(statuses: ReadonlySet<IntentStatus>): Promise<TransferIntent[]> {
    const fromOpen = [...statuses].every((s) => OPEN_STATUSES.has(s));
    const ids = await this.options.redis.zrange(this.key(fromOpen ? 'open' : 'all'), '0', '-1');
    return (await this.load(ids)).filter((i) => statuses.has(i.status));
  }

  private async load(ids: string[]): Promise<TransferIntent[]> {
    if (ids.length === 0) return [];
    const texts = await this.options.redis.mget(...ids.map((i) => this.intentKey(i)));
    return texts.flatMap((t) => (t ? [JSON.parse(t) as TransferIntent] : []));
  }

  private async read(tx: Redis, id: string): Promise<TransferIntent | undefined> {
    const text = await tx.get(this.intentKey(id));
    return text ? (JSON.parse(text) as TransferIntent) : undefined;
  }

  private writeIntent(m: ReturnType<Redis['multi']>, intent: TransferIntent): void {
    m.set(this.intentKey(intent.id), JSON.stringify(intent));
    if (OPEN_STATUSES.has(intent.status)) m.zadd(this.key('open'), intent.createdAt, intent.id);
    else m.zrem(this.key('open'), intent.id);
  }

  /**
   * WATCH the keys, decide on what was read, and write in MULTI; a conflicting write by anyone
   * aborts EXEC and the whole decision is made again on fresh data.
   */
  private optimistic<T>(
    keys: string[],
    decide: (tx: Redis) => Promise<{ done: T; writes?: (m: ReturnType<Redis['multi']>) => void }>,
  ): Promise<T> {
    const run = this.chain
      .catch(() => {})
      .then(async () => {
        const tx = this.tx;
        if (!tx) throw new Error('wallet store is not open');
        for (let attempt = 0; attempt < MAX_CONFLICTS; attempt += 1) {
          await tx.watch(...keys);
          let decision: Awaited<ReturnType<typeof decide>>;
          try {
            decision = await decide(tx);
          } catch (error) {
            await tx.unwatch().catch(() => {});
            throw error;
          }
          if (!decision.writes) {
            await tx.unwatch();
            return decision.done;
          }
          const multi = tx.multi();
          decision.writes(multi);
          const result = await multi.exec();
          if (result !== null) {
            const failed = result.find(([error]) => error);
            if (failed) throw failed[0] as Error;
            return decision.done;
          }
        }
        throw new Error(`wallet store: gave up after ${MAX_CONFLICTS} conflicting writes`);
      });
    this.chain = run;
    return run;
  }

  private key(name: string): string {
    return `${this.options.keyPrefix}:wallet:${name}`;
  }

  private intentKey(id: string): string {
    return this.key(`intent:${id}`);
  }
}
