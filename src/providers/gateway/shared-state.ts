import type { Redis } from 'ioredis';

/**
 * What one node learns about a provider that every node must act on at once: a rate-limit
 * cooldown, an open breaker, or a key that was refused.
 */
export interface SharedProviderState {
  /** Send nothing to this provider before this time (epoch ms). */
  cooldownUntil?: number;
  /** A breaker is open somewhere in the cluster; only health probes may reach the provider. */
  open?: boolean;
  /** The provider refused this key; `fingerprint` identifies the key, so a new key clears it. */
  disabled?: { fingerprint: string; reason: string };
}

export interface ProviderStateStore {
  /** The latest known state, from a local cache: no I/O on the request path. */
  get(providerId: string): SharedProviderState;
  setCooldown(providerId: string, untilMs: number): Promise<void>;
  setOpen(providerId: string, open: boolean): Promise<void>;
  setDisabled(providerId: string, disabled: SharedProviderState['disabled'] | undefined): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** One process: the state lives here only. */
export class LocalProviderStateStore implements ProviderStateStore {
  private readonly states = new Map<string, SharedProviderState>();

  constructor(private readonly now: () => number = Date.now) {}

  get(providerId: string): SharedProviderState {
    const state = this.states.get(providerId) ?? {};
    if (state.cooldownUntil !== undefined && state.cooldownUntil <= this.now()) delete state.cooldownUntil;
    return state;
  }

  async setCooldown(providerId: string, untilMs: number): Promise<void> {
    const state = this.mutable(providerId);
    state.cooldownUntil = Math.max(state.cooldownUntil ?? 0, untilMs);
  }

  async setOpen(providerId: string, open: boolean): Promise<void> {
    this.mutable(providerId).open = open || undefined;
  }

  async setDisabled(providerId: string, disabled: SharedProviderState['disabled']): Promise<void> {
    const state = this.mutable(providerId);
    if (disabled) state.disabled = disabled;
    else delete state.disabled;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  private mutable(providerId: string): SharedProviderState {
    let state = this.states.get(providerId);
    if (!state) {
      state = {};
      this.states.set(providerId, state);
    }
    return state;
  }
}

export interface RedisProviderStateStoreOptions {
  redis: Redis;
  keyPrefix: string;
  providerIds: readonly string[];
  /** How long an open-breaker flag lives if no node clears it (a node died mid-incident). */
  openTtlMs: number;
  /** Full re-read interval, in case a notification was missed. */
  refreshMs: number;
  now?: () => number;
}

/**
 * Cluster-wide state in Redis: one hash per provider, written with a notification on a channel
 * so every node refreshes its cache at once, and re-read periodically in case one was missed.
 * Cooldowns only ever move later (a Lua max), so two nodes cannot shorten each other's.
 */
export class RedisProviderStateStore implements ProviderStateStore {
  private readonly cache = new Map<string, SharedProviderState>();
  private subscriber: Redis | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: RedisProviderStateStoreOptions) {
    this.now = options.now ?? Date.now;
  }

  get(providerId: string): SharedProviderState {
    const state = this.cache.get(providerId) ?? {};
    if (state.cooldownUntil !== undefined && state.cooldownUntil <= this.now()) {
      const { cooldownUntil: _expired, ...rest } = state;
      return rest;
    }
    return state;
  }

  async setCooldown(providerId: string, untilMs: number): Promise<void> {
    const local = this.cache.get(providerId) ?? {};
    this.cache.set(providerId, { ...local, cooldownUntil: Math.max(local.cooldownUntil ?? 0, untilMs) });
    // KEYS[1] the provider's hash; ARGV[1] the cooldown end (epoch ms). Keeps the later end.
    await this.options.redis.eval(
      "local current = tonumber(redis.call('HGET', KEYS[1], 'cooldownUntil') or '0') if tonumber(ARGV[1]) > current then redis.call('HSET', KEYS[1], 'cooldownUntil', ARGV[1]) end return 1",
      1,
      this.key(providerId),
      String(untilMs),
    );
    await this.notify(providerId);
  }

  async setOpen(providerId: string, open: boolean): Promise<void> {
    const local = this.cache.get(providerId) ?? {};
    this.cache.set(providerId, { ...local, open: open || undefined });
    if (open) {
      await this.options.redis
        .multi()
        .set(this.openKey(providerId), '1', 'PX', this.options.openTtlMs)
        .exec();
    } else {
      await this.options.redis.del(this.openKey(providerId));
    }
    await this.notify(providerId);
  }

  async setDisabled(providerId: string, disabled: SharedProviderState['disabled']): Promise<void> {
    const local = { ...(this.cache.get(providerId) ?? {}) };
    if (disabled) local.disabled = disabled;
    else delete local.disabled;
    this.cache.set(providerId, local);
    if (disabled) await this.options.redis.hset(this.key(providerId), 'disabled', JSON.stringify(disabled));
    else await this.options.redis.hdel(this.key(providerId), 'disabled');
    await this.notify(providerId);
  }

  async start(): Promise<void> {
    this.subscriber = this.options.redis.duplicate();
    this.subscriber.on('error', () => {});
    this.subscriber.on('message', (_channel: string, providerId: string) => {
      void this.refresh(providerId).catch(() => {});
    });
    // Redis may be away at start (the agent serves from its write-ahead log meanwhile): then the
    // subscription and the first read happen when it answers.
    const subscribe = () =>
      this.subscriber
        ?.subscribe(this.channel())
        .then(() => this.refreshAll())
        .catch(() => {});
    this.subscriber.on('ready', () => void subscribe());
    await subscribe();
    this.timer = setInterval(() => void this.refreshAll().catch(() => {}), this.options.refreshMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.subscriber?.disconnect();
  }

  private async refreshAll(): Promise<void> {
    await Promise.all(this.options.providerIds.map((id) => this.refresh(id)));
  }

  private async refresh(providerId: string): Promise<void> {
    const [hash, open] = await Promise.all([
      this.options.redis.hgetall(this.key(providerId)),
      this.options.redis.exists(this.openKey(providerId)),
    ]);
    const state: SharedProviderState = {};
    if (hash.cooldownUntil) state.cooldownUntil = Number(hash.cooldownUntil);
    if (hash.disabled) state.disabled = JSON.parse(hash.disabled) as SharedProviderState['disabled'];
    if (open) state.open = true;
    this.cache.set(providerId, state);
  }

  private async notify(providerId: string): Promise<void> {
    await this.options.redis.publish(this.channel(), providerId);
  }

  private key(providerId: string): string {
    return `${this.options.keyPrefix}:gw:provider:${providerId}`;
  }

  private openKey(providerId: string): string {
    return `${this.options.keyPrefix}:gw:open:${providerId}`;
  }

  private channel(): string {
    return `${this.options.keyPrefix}:gw:events`;
  }
}
