import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { MeteredCostGuard, ThresholdEvent } from '../providers/budget/ledger.js';
import { LocalCostGuard } from '../providers/budget/local-cost-guard.js';
import { RedisCostGuard } from '../providers/budget/redis-cost-guard.js';
import { ResilientCostGuard } from '../providers/budget/resilient-cost-guard.js';
import { Cluster } from './cluster/cluster.js';
import { resolveNodeId } from './cluster/cluster-config.js';
import type { AgentConfig } from './config/schema.js';
import type { IdentityStore } from './identity/identity-store.js';
import { LogIdentityStore } from './identity/log-identity-store.js';
import { RedisIdentityStore } from './identity/redis-identity-store.js';
import { ResilientIdentityStore } from './identity/resilient-identity-store.js';
import { LogMemoryStore } from './memory/log-memory-store.js';
import type { MemoryStore } from './memory/memory-store.js';
import { RedisMemoryStore } from './memory/redis-memory-store.js';
import { ResilientMemoryStore } from './memory/resilient-memory-store.js';
import { isRedisConfigured, redisConnectionOptions } from './redis/redis-connection.js';
import { RedisReachability } from './redis/redis-reachability.js';
import { WriteAheadLog } from './redis/write-ahead-log.js';

/** How long an event claim outlives a server that died holding it. */
const CLAIM_TTL_MS = 6000;

export interface AgentStateDeps {
  logger: Logger;
  /** Used instead of creating a client from `redis.url` (tests, shared connections). */
  redis?: Redis;
  /** The bearer token this node presents to its peers, read per request (it may rotate). */
  meshToken: () => string | undefined;
  /** This build's version, which each node announces. */
  version: string;
  now?: () => number;
}

/**
 * Where the agent's state lives. With Redis: shared by every node, which makes this process one
 * node of a cluster, with a write-ahead log and local mirrors that carry it through a Redis
 * outage. Without: local append-only logs under the data directory.
 */
export interface AgentState {
  nodeId: string;
  redis: Redis | undefined;
  /** Whether `redis` was made here (and is closed on stop), not passed in. */
  ownsRedis: boolean;
  redisOptions: ReturnType<typeof redisConnectionOptions>;
  reachability: RedisReachability | undefined;
  wal: WriteAheadLog | undefined;
  cluster: Cluster | undefined;
  memory: MemoryStore;
  identity: IdentityStore;
  /** The Redis-backed stores, for the outage snapshot and the write-ahead replay. */
  shared?: {
    memory: ResilientMemoryStore;
    identity: ResilientIdentityStore;
    identityStore: RedisIdentityStore;
  };
}

/** Builds the state's stores from the config; nothing connects until each store is opened. */
export function createAgentState(config: Readonly<AgentConfig>, deps: AgentStateDeps): AgentState {
  const logger = deps.logger;
  const ownsRedis = deps.redis === undefined && isRedisConfigured(config);
  const redisOptions = redisConnectionOptions(config.redis);
  const redis =
    deps.redis ??
    (redisOptions
      ? new Redis({
          ...redisOptions,
          // Fail a request quickly while Redis is away rather than queueing it for minutes.
          maxRetriesPerRequest: 2,
          connectTimeout: 3000,
          // Not enableAutoPipelining: with it, the write-ahead replay after a Redis restart
          // sometimes stalled in the outage chaos test, for a gain lost in benchmark noise.
        })
      : undefined);
  const nodeId = resolveNodeId(config.cluster);
  // While Redis is unreachable, writes meant for it go to this node's write-ahead log first and
  // are replayed when it returns; reads come from local mirrors of the shared state.
  const reachability = redis ? new RedisReachability(redis, logger) : undefined;
  // Once Redis counts as unreachable (logged once), each failed reconnect is only debug detail.
  redis?.on('error', (error: Error) =>
    logger[reachability?.reachable === false ? 'debug' : 'warn'](
      { err: error.message },
      'redis connection error',
    ),
  );
  const wal = reachability
    ? new WriteAheadLog({ dataDir: config.memory.dataDir, reachability, logger })
    : undefined;
  // With Redis, this process is one node of a cluster: connections a platform allows only once
  // are held under leases, and `/status` lists the nodes.
  const cluster = redis
    ? new Cluster({
        redis,
        keyPrefix: config.redis.keyPrefix,
        config: config.cluster,
        node: nodeId,
        version: deps.version,
        logger,
        ...(reachability ? { reachability } : {}),
        meshToken: deps.meshToken,
      })
    : undefined;

  const sharedMemory =
    redis && wal && reachability
      ? new ResilientMemoryStore({
          inner: new RedisMemoryStore({
            redis,
            keyPrefix: config.redis.keyPrefix,
            retainTurns: config.memory.retainTurns,
            dedupeTtlSeconds: config.memory.dedupeTtlSeconds,
            // Renewed every third of this while the turn runs: after a crash, the other server may
            // answer the event this soon (a stalled inbox job is handed over on the same scale).
            claimTtlMs: CLAIM_TTL_MS,
          }),
          wal,
          reachability,
          mirrorTurns: config.context.maxTurns,
          dedupeTtlMs: config.memory.dedupeTtlSeconds * 1000,
          logger,
          ...(deps.now ? { now: deps.now } : {}),
        })
      : undefined;
  const memory: MemoryStore =
    sharedMemory ??
    new LogMemoryStore({
      dataDir: config.memory.dataDir,
      retainTurns: config.memory.retainTurns,
      dedupeTtlSeconds: config.memory.dedupeTtlSeconds,
      logger,
      ...(deps.now ? { now: deps.now } : {}),
    });

  const sharedIdentityStore = redis
    ? new RedisIdentityStore({ redis, keyPrefix: config.redis.keyPrefix })
    : undefined;
  const sharedIdentity =
    sharedIdentityStore && wal && reachability
      ? new ResilientIdentityStore({ inner: sharedIdentityStore, wal, reachability })
      : undefined;
  const identity: IdentityStore =
    sharedIdentity ??
    new LogIdentityStore({
      dataDir: config.memory.dataDir,
      logger,
      ...(deps.now ? { now: deps.now } : {}),
    });

  return {
    nodeId,
    redis,
    ownsRedis,
    redisOptions,
    reachability,
    wal,
    cluster,
    memory,
    identity,
    ...(sharedMemory && sharedIdentity && sharedIdentityStore
      ? { shared: { memory: sharedMemory, identity: sharedIdentity, identityStore: sharedIdentityStore } }
      : {}),
  };
}

/**
 * The cost guard over `state`: the budget counters in Redis (with this node's share of what was
 * left while Redis is away), or the local cost log.
 */
export function createCostGuard(
  config: Readonly<AgentConfig>,
  state: AgentState,
  deps: { logger: Logger; onThreshold: (event: ThresholdEvent) => void; now?: () => number },
): { costs: MeteredCostGuard; shared: ResilientCostGuard | undefined } {
  const { redis, wal, reachability, cluster } = state;
  const { logger, onThreshold } = deps;
  const sharedCosts =
    redis && wal && reachability
      ? new ResilientCostGuard({
          inner: new RedisCostGuard({
            redis,
            keyPrefix: config.redis.keyPrefix,
            budgets: config.budgets,
            onThreshold,
            ...(deps.now ? { now: deps.now } : {}),
          }),
          redis,
          keyPrefix: config.redis.keyPrefix,
          wal,
          reachability,
          budgets: config.budgets,
          // While Redis is away, each node that was up may spend only its share of what was left.
          nodeShare: () => Math.max(1, cluster?.view().nodes.filter((n) => n.up).length ?? 1),
          logger,
          onThreshold,
          ...(deps.now ? { now: deps.now } : {}),
        })
      : undefined;
  const costs: MeteredCostGuard =
    sharedCosts ??
    new LocalCostGuard({
      dataDir: config.memory.dataDir,
      budgets: config.budgets,
      logger,
      onThreshold,
      ...(deps.now ? { now: deps.now } : {}),
    });
  return { costs, shared: sharedCosts };
}
