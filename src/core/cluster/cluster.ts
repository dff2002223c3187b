import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisReachability } from '../redis/redis-reachability.js';
import type { ClusterConfig } from './cluster-config.js';
import { LeaseKeeper } from './lease-keeper.js';
import { OutageHolds } from './outage-holds.js';
import { type LeaseHolder, RedisLease } from './redis-lease.js';

/** One node's heartbeat record. */
export interface NodeRecord {
  node: string;
  instance: string;
  pid: number;
  version: string;
  startedAt: number;
  lastSeenAt: number;
  advertiseUrl?: string;
  /** Set by a node that stopped cleanly. */
  stopped?: boolean;
}

export interface NodeView extends NodeRecord {
  self: boolean;
  /** Heartbeat seen within three intervals. */
  up: boolean;
  /** Whether this node reached it over the mesh at its `advertiseUrl` (peers only). */
  mesh?: 'reachable' | 'unreachable';
}

export interface ClusterView {
  node: string;
  nodes: NodeView[];
  /** Each lease this node contends for, and who holds it. */
  leases: { name: string; holder?: LeaseHolder }[];
  /** Epoch ms of the last successful refresh (absent while Redis has not answered yet). */
  refreshedAt?: number;
}

const FORGET_NODES_AFTER_MS = 86_400_000;
const MESH_TIMEOUT_MS = 1000;

/**
 * This node's place among the servers sharing one Redis: its heartbeat, the leases it contends
 * for, and a view of the others for `/status`. Ownership is decided in Redis only; the mesh
 * check is information, so a cut link between the servers cannot make both act as owner.
 */
export class Cluster {
  readonly node: string;
  readonly instance = randomBytes(4).toString('hex');
  private readonly keepers = new Map<string, LeaseKeeper>();
  private readonly leases = new Map<string, RedisLease>();
  private readonly nodesKey: string;
  private readonly releasedChannel: string;
  private readonly startedAt: number;
  private subscriber: Redis | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private snapshot: ClusterView;
  private readonly meshState = new Map<string, 'reachable' | 'unreachable'>();
  private readonly now: () => number;
  /** Set with `reachability`: leases are kept through a Redis outage while the peers promise. */
  readonly outageHolds: OutageHolds | undefined;

  constructor(
    private readonly options: {
      redis: Redis;
      keyPrefix: string;
      config: ClusterConfig;
      node: string;
      version: string;
      logger: Logger;
      reachability?: RedisReachability;
      /** The bearer token the peers' HTTP channels accept, for the mesh requests (read per request). */
      meshToken?: () => string | undefined;
      fetch?: typeof fetch;
      now?: () => number;
    },
  ) {
    this.node = options.node;
    this.now = options.now ?? Date.now;
    const reachability = options.reachability;
    this.outageHolds = reachability
      ? new OutageHolds({
          node: options.node,
          view: () => this.view(),
          redisReachable: () => reachability.reachable,
          holds: (lease) => this.keepers.get(lease)?.term !== undefined,
          ttlMs: options.config.leaseTtlMs,
          logger: options.logger,
          ...(options.meshToken ? { token: options.meshToken } : {}),
          ...(options.fetch ? { fetch: options.fetch } : {}),
          ...(options.now ? { now: options.now } : {}),
        })
      : undefined;
    this.startedAt = this.now();
    this.nodesKey = `${options.keyPrefix}:cluster:nodes`;
    this.releasedChannel = `${options.keyPrefix}:cluster:released`;
    this.snapshot = { node: this.node, nodes: [], leases: [] };
  }

  /** The keeper of one named lease (one per name), for the code that must run on one node only. */
  lease(name: string): LeaseKeeper {
    let keeper = this.keepers.get(name);
    if (!keeper) {
      const lease = new RedisLease(this.options.redis, name, {
        keyPrefix: this.options.keyPrefix,
        ttlMs: this.options.config.leaseTtlMs,
        releasedChannel: this.releasedChannel,
      });
      keeper = new LeaseKeeper(lease, {
        node: this.node,
        instance: this.instance,
        ttlMs: this.options.config.leaseTtlMs,
        logger: this.options.logger,
        ...(this.outageHolds ? { outageHold: this.outageHolds } : {}),
        now: this.now,
      });
      this.leases.set(name, lease);
      this.keepers.set(name, keeper);
    }
    return keeper;
  }

  async start(): Promise<void> {
    // A released lease is announced on a channel, so a standby takes over at once on a graceful
    // hand-over instead of waiting for the TTL. Pub/sub needs its own connection.
    const subscriber = this.options.redis.duplicate();
    subscriber.on('error', () => {}); // The main connection already logs Redis errors.
    subscriber.on('message', (_channel: string, name: string) => this.keepers.get(name)?.wake());
    this.subscriber = subscriber;
    // Back from an outage or a Sentinel failover: contend at once instead of at the next tick.
    this.options.redis.on('ready', this.wakeAll);
    await subscriber
      .subscribe(this.releasedChannel)
      .catch((error: unknown) =>
        this.options.logger.warn(
          { err: (error as Error).message },
          'cannot subscribe to lease releases yet; takeovers wait for the TTL until Redis answers',
        ),
      );
    await this.beat();
  }

  private readonly wakeAll = () => {
    for (const keeper of this.keepers.values()) keeper.wake();
  };

  /**
   * The last refresh (one heartbeat old at most), with this node's own leases as they are now:
   * what this node holds or gave up shows at once, the other nodes' at their next heartbeat.
   */
  view(): ClusterView {
    const leases = this.snapshot.leases.map((lease) => {
      const mine = this.keepers.get(lease.name)?.term?.holder;
      if (mine) return { name: lease.name, holder: mine };
      const staleSelf = lease.holder?.node === this.node && lease.holder.instance === this.instance;
      return staleSelf ? { name: lease.name } : lease;
    });
    const known = new Set(leases.map((l) => l.name));
    for (const [name, keeper] of this.keepers) {
      const mine = keeper.term?.holder;
      if (!known.has(name)) leases.push(mine ? { name, holder: mine } : { name });
    }
    return { ...this.snapshot, leases };
  }

  /** After the leases were released: marks this node stopped and closes the subscription. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.options.redis.off('ready', this.wakeAll);
    await this.writeHeartbeat(true).catch(() => {});
    await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
  }

  private async beat(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.writeHeartbeat(false);
      await this.refresh();
    } catch (error) {
      this.options.logger.debug({ err: (error as Error).message }, 'cluster heartbeat failed');
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.beat(), this.options.config.heartbeatEveryMs);
    this.timer.unref();
  }

  private async writeHeartbeat(stopped: boolean): Promise<void> {
    const record: NodeRecord = {
      node: this.node,
      instance: this.instance,
      pid: process.pid,
      version: this.options.version,
      startedAt: this.startedAt,
      lastSeenAt: this.now(),
      ...(this.options.config.advertiseUrl ? { advertiseUrl: this.options.config.advertiseUrl } : {}),
      ...(stopped ? { stopped: true } : {}),
    };
    await this.options.redis.hset(this.nodesKey, this.node, JSON.stringify(record));
  }

  private async refresh(): Promise<void> {
    const now = this.now();
    const raw = await this.options.redis.hgetall(this.nodesKey);
    const records = Object.values(raw).map((value) => JSON.parse(value) as NodeRecord);
    const stale = records.filter((r) => now - r.lastSeenAt > FORGET_NODES_AFTER_MS).map((r) => r.node);
    if (stale.length > 0) await this.options.redis.hdel(this.nodesKey, ...stale);
    const downAfter = this.options.config.heartbeatEveryMs * 3;
    const nodes = records
      .filter((r) => now - r.lastSeenAt <= FORGET_NODES_AFTER_MS)
      .map((r): NodeView => {
        const self = r.node === this.node;
        const mesh = self ? undefined : this.meshState.get(r.node);
        return {
          ...r,
          self,
          up: !r.stopped && now - r.lastSeenAt <= downAfter,
          ...(mesh ? { mesh } : {}),
        };
      })
      .sort((a, b) => a.node.localeCompare(b.node));
    const leases = await Promise.all(
      [...this.leases.values()].map(async (lease) => {
        const holder = await lease.holder();
        return holder ? { name: lease.name, holder } : { name: lease.name };
      }),
    );
    this.snapshot = { node: this.node, nodes, leases, refreshedAt: now };
    this.checkMesh(nodes);
  }

  /** In the background: a slow peer must not delay the heartbeat. */
  private checkMesh(nodes: readonly NodeView[]): void {
    const doFetch = this.options.fetch ?? fetch;
    for (const peer of nodes) {
      if (peer.self || !peer.up || !peer.advertiseUrl) continue;
      const url = new URL('/healthz', peer.advertiseUrl);
      void doFetch(url, { signal: AbortSignal.timeout(MESH_TIMEOUT_MS) })
        .then((response) => {
          void response.body?.cancel();
          return response.ok;
        })
        .catch(() => false)
        .then((ok) => {
          const state = ok ? 'reachable' : 'unreachable';
          if (this.meshState.get(peer.node) !== state)
            this.options.logger[ok ? 'info' : 'warn'](
              { peer: peer.node, url: url.href },
              `peer ${state} over the mesh`,
            );
          this.meshState.set(peer.node, state);
        });
    }
  }
}
