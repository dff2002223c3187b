import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ChannelAdapter } from '../channels/channel-adapter.js';
import { ChannelHub } from '../channels/channel-hub.js';
import { channelFactories } from '../channels/create-channels.js';
import { registerDashboardRoute } from '../channels/http/dashboard-route.js';
import { HttpChannel } from '../channels/http/http-channel.js';
import { registerOpenAiCompatibleRoutes } from '../channels/http/openai-compatible-routes.js';
import { LeasedChannel } from '../channels/leased-channel.js';
import { ReplyRouter } from '../channels/reply-router.js';
import { BullMqJobScheduler } from '../jobs/bullmq-job-scheduler.js';
import { createQueue } from '../jobs/create-queue.js';
import { InProcessScheduler } from '../jobs/in-process-scheduler.js';
import type { JobAlert, JobOutcome, JobScheduler } from '../jobs/job-scheduler.js';
import { budgetRollUpJob } from '../providers/budget/budget-roll-up-job.js';
import { bucketOf, type MeteredCostGuard, type ThresholdEvent } from '../providers/budget/ledger.js';
import { LocalCostGuard } from '../providers/budget/local-cost-guard.js';
import { findLocalProvider, selectFallbackProvider } from '../providers/create-provider.js';
import { type BuiltGateway, buildGateway } from '../providers/gateway/build-gateway.js';
import { createProviderFetch } from '../providers/http-dispatcher.js';
import type { ChatProvider } from '../providers/provider.js';
import { createWallet, type Wallet } from '../wallet/create-wallet.js';
import { createAgentState, createCostGuard } from './agent-state.js';
import { incidentWatchJob } from './alerts/incident-watch.js';
import { Incidents } from './alerts/incidents.js';
import { ownerAlertDelivery } from './alerts/owner-alert-delivery.js';
import { holdRequestSchema } from './cluster/outage-holds.js';
import { createBuiltinCommands, type StatusSnapshot } from './commands/builtin-commands.js';
import { createLinkCommands } from './commands/link-commands.js';
import { formatProvidersReport } from './commands/providers-report.js';
import { collectSecrets } from './config/load-config.js';
import type { AgentConfig, ProviderConfig } from './config/schema.js';
import { SecretRotation, type SecretRotationTargets } from './config/secret-rotation.js';
import { rotatingScrubber, type VaultSecretSource } from './config/vault/vault-secret-source.js';
import { AgentError } from './errors.js';
import type { IdentityStore } from './identity/identity-store.js';
import { createLogger, logLineScrubber, secretScrubber } from './logger.js';
import { memoryCompactionJob } from './memory/memory-compaction-job.js';
import type { MemoryStore } from './memory/memory-store.js';
import { AgentMetrics } from './metrics.js';
import { Pipeline } from './pipeline.js';
import { RedisSnapshot } from './redis/redis-snapshot.js';
import { ReplayBeacon } from './redis/replay-beacon.js';
import { channelState, clusterLines, orUnavailable, providerState } from './status-text.js';
import { UsageHistory } from './usage-history.js';
import { readPackageVersion } from './version.js';

/** How often each node checks the platform connections it holds. */
const CHANNEL_CHECK_EVERY_MS = 5000;

/** How often the budget counters a Redis outage is enforced against are read. */
const BUDGET_REFRESH_EVERY_MS = 10_000;

export interface AgentDeps {
  logger?: Logger;
  /** Used instead of creating a client from `redis.url` (tests, shared connections). */
  redis?: Redis;
  /** Used instead of the gateway over `providers` (tests). */
  provider?: ChatProvider;
  /** Used instead of the adapters built from `channels` (tests). */
  adapters?: readonly ChannelAdapter[];
  /** Secrets from Vault, re-read on a schedule; each change is taken through `reloadConfig`. */
  secretSource?: VaultSecretSource;
  /**
   * Loads the config again as at start-up. With it, rotated secrets (Vault's, or `NAME_FILE` files
   * rewritten in place) are taken without a restart: see `SecretRotation`.
   */
  reloadConfig?: () => Readonly<AgentConfig>;
  /** How often `reloadConfig` runs on its own (for `NAME_FILE` secrets); 0: only on Vault changes. */
  secretFilesCheckEveryMs?: number;
  now?: () => number;
}

export interface Agent {
  readonly config: Readonly<AgentConfig>;
  readonly logger: Logger;
  readonly http: HttpChannel;
  readonly pipeline: Pipeline;
  readonly memory: MemoryStore;
  readonly costs: MeteredCostGuard;
  readonly identity: IdentityStore;
  /** The platform channels (Discord, Telegram, Slack), when any is configured. */
  readonly channels: ChannelHub | undefined;
  /** The provider gateway, when providers are configured. */
  readonly gateway: BuiltGateway['gateway'] | undefined;
  /** The Solana wallet, when `wallet.enabled`. */
  readonly wallet: Wallet | undefined;
  /** Takes rotated secrets while running, when `reloadConfig` was given. */
  readonly secrets: SecretRotation | undefined;
  /** Listens, and resolves with the HTTP channel's URL. */
  start(): Promise<string>;
  /** Stops taking work, finishes in-flight turns (up to `shutdown.graceMs`), flushes and closes. */
  stop(): Promise<void>;
}

/** Builds every part of the agent from its config; nothing is global, so tests can build several. */
export async function createAgent(config: Readonly<AgentConfig>, deps: AgentDeps = {}): Promise<Agent> {
  const secretSource = deps.secretSource;
  const baseSecrets = collectSecrets(config);
  // Set below once the parts exist; provider keys are read from its live config on every call.
  const rotationTargets: SecretRotationTargets = {};
  const rotation = deps.reloadConfig
    ? new SecretRotation({ initial: config, reload: deps.reloadConfig, targets: rotationTargets })
    : undefined;
  // A rotated secret (and the one it replaced) is scrubbed too.
  const rotatingSources = [...(secretSource ? [secretSource] : []), ...(rotation ? [rotation] : [])];
  const logger =
    deps.logger ??
    createLogger({
      level: config.log.level,
      secrets: baseSecrets,
      ...(rotatingSources.length > 0
        ? { scrub: rotatingScrubber(baseSecrets, rotatingSources, logLineScrubber) }
        : {}),
    });
  secretSource?.useLogger(logger.child({ component: 'vault' }));
  rotation?.useLogger(logger.child({ component: 'secrets' }));
  const startedAt = Date.now();
  const version = readPackageVersion();

  const state = createAgentState(config, {
    logger,
    // Read per request: the HTTP channel (built later) holds the tokens, rotated ones too.
    meshToken: () => http.meshToken,
    version,
    ...(deps.redis ? { redis: deps.redis } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  const { nodeId, redis, ownsRedis, redisOptions, reachability, wal, cluster, memory, identity } = state;
  const sharedMemory = state.shared?.memory;
  const sharedIdentity = state.shared?.identity;
  const sharedIdentityStore = state.shared?.identityStore;

  // Set once the platform channels exist: alerts reach the owners' chats through the outbox.
  let alertOwners: ((id: string, text: string) => Promise<void>) | undefined;
  const incidents = new Incidents({
    deliver: async (id, text) => alertOwners?.(id, text),
    ...(redis
      ? {
          // One node reports an incident both see; with Redis away, each reports its own.
          claim: async (key, ttlMs) => {
            if (reachability?.reachable === false) throw new Error('Redis is unreachable');
            return (
              (await redis.set(`${config.redis.keyPrefix}:alert:${key}`, nodeId, 'PX', ttlMs, 'NX')) === 'OK'
            );
          },
          release: async (key) => {
            await redis.del(`${config.redis.keyPrefix}:alert:${key}`);
          },
        }
      : {}),
    source: `${config.agent.name} on ${nodeId}`,
    logger,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const onThreshold = (event: ThresholdEvent) => {
    logger.warn(event, event.level === 'warn' ? 'budget passed its warning threshold' : 'budget used up');
    const period = `${event.period === 'day' ? 'daily' : 'monthly'} ${event.scope} budget${event.scope === 'global' ? '' : ` for ${event.subject}`}`;
    const passed = event.level === 'warn' ? 'passed its warning threshold' : 'is used up';
    // Once per budget, period and level: the cost guards report each threshold once.
    void incidents.notice(
      `budget:${event.scope}:${event.subject}:${event.period}:${event.level}:${bucketOf(event.period, (deps.now ?? Date.now)())}`,
      `the ${period} ($${event.limitUsd}) ${passed}`,
    );
  };
  const { costs, shared: sharedCosts } = createCostGuard(config, state, {
    logger,
    onThreshold,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const metrics = new AgentMetrics();
  /** The shared client as the parts that read Redis only while it answers take it. */
  const sharedRedis = redis
    ? {
        client: redis,
        keyPrefix: config.redis.keyPrefix,
        ...(reachability ? { reachable: () => reachability.reachable } : {}),
      }
    : undefined;
  // The dashboard's 24-hour chart: per node in memory, and the cluster's totals in Redis.
  const usage = new UsageHistory({
    logger,
    ...(sharedRedis ? { redis: sharedRedis } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  metrics.forwardTo(usage);
  const providerFetch = createProviderFetch();
  // The alert text goes to a chat: no configured secret may be in it.
  const withoutSecrets =
    rotatingSources.length > 0 ? rotatingScrubber(baseSecrets, rotatingSources) : secretScrubber(baseSecrets);
  const onJobAlert: JobAlert = (name, error, consecutiveFailures) => {
    logger.error({ job: name, err: error.message, consecutiveFailures }, 'maintenance job keeps failing');
    void incidents.notice(
      `job:${name}:${consecutiveFailures}:${Date.now()}`,
      `the maintenance job "${name}" failed ${consecutiveFailures} runs in a row. Last error: ${withoutSecrets(error.message)}`,
    );
  };
  // Jobs about this node's own state (its circuit breakers, its local provider) run on every node.
  const scheduler = new InProcessScheduler(logger, {
    nodeId,
    alertAfterFailures: config.jobs.alertAfterFailures,
    onAlert: onJobAlert,
  });
  // Jobs about shared state run once across the cluster on BullMQ with Redis, else in-process.
  const clusterJobs: JobScheduler =
    redis && redisOptions
      ? new BullMqJobScheduler({
          connection: redisOptions,
          redis,
          keyPrefix: config.redis.keyPrefix,
          nodeId,
          logger,
          attempts: config.jobs.attempts,
          backoffMs: config.jobs.backoffMs,
          alertAfterFailures: config.jobs.alertAfterFailures,
          onAlert: onJobAlert,
          ...(reachability ? { reachable: () => reachability.reachable } : {}),
        })
      : scheduler;
  // Each job's interval, for the dashboard's next run.
  // The cluster jobs' outcomes live in Redis: while it is away only this node's are known.
  const jobOutcomes = async (): Promise<JobOutcome[]> => [
    ...(await scheduler.outcomes()),
    ...(clusterJobs === scheduler || reachability?.reachable === false ? [] : await clusterJobs.outcomes()),
  ];
  const built =
    deps.provider === undefined && config.providers.length > 0
      ? buildGateway(config.providers, config.gateway, {
          logger,
          costGuard: costs,
          keyPrefix: config.redis.keyPrefix,
          fetch: providerFetch.fetch,
          observer: metrics,
          ...(rotation ? { apiKeyFor: (p: ProviderConfig) => () => rotation.providerKey(p.id) } : {}),
          ...(redis ? { redis } : {}),
          ...(deps.now ? { now: deps.now } : {}),
        })
      : undefined;
  let provider: ChatProvider =
    deps.provider ??
    built?.gateway ??
    (await selectFallbackProvider(config, { logger, fetch: providerFetch.fetch }));
  if (built) scheduler.add(built.probeJob);
  if (provider.kind === 'none' && config.localProbe.enabled) {
    scheduler.add({
      name: 'local-provider-probe',
      everyMs: config.localProbe.everyMs,
      run: async () => {
        const local = await findLocalProvider(config, { logger, fetch: providerFetch.fetch });
        if (!local) return;
        provider = local;
        scheduler.remove('local-provider-probe');
      },
    });
  }
  if (config.memory.compaction.enabled) {
    clusterJobs.add(
      memoryCompactionJob({
        memory,
        provider: () => provider,
        keepTurns: config.context.maxTurns,
        retainTurns: config.memory.retainTurns,
        everyMs: config.memory.compaction.everyMs,
        logger,
      }),
    );
  }
  // On every node: each serves a Redis outage from its own copy of the shared state.
  const snapshot =
    sharedMemory && sharedIdentity && sharedIdentityStore && reachability
      ? new RedisSnapshot({
          dataDir: config.memory.dataDir,
          memory: sharedMemory,
          identity: sharedIdentity,
          readIdentities: () => sharedIdentityStore.exportAll(),
          reachability,
          ...(sharedCosts ? { costs: sharedCosts } : {}),
          turnsPerPerson: config.context.maxTurns,
          maxPersons: config.redis.snapshot.maxPersons,
          everyMs: config.redis.snapshot.everyMs,
          logger,
          ...(deps.now ? { now: deps.now } : {}),
        })
      : undefined;
  if (snapshot) scheduler.add(snapshot.job());
  if (sharedCosts) {
    // The last-known budget counters a Redis outage is enforced against stay this fresh.
    scheduler.add({
      name: 'budget-refresh',
      everyMs: BUDGET_REFRESH_EVERY_MS,
      run: () => sharedCosts.refresh(),
    });
  }
  // The Redis ledger's keys expire by TTL; only the local cost log needs rolling up.
  if (costs instanceof LocalCostGuard) scheduler.add(budgetRollUpJob(costs, logger));

  const providerStatus = (): StatusSnapshot['providers'] =>
    built
      ? built.gateway.snapshot().map((p) => ({ id: p.id, model: p.model, state: providerState(p) }))
      : [
          {
            id: provider.id,
            model: provider.model,
            state: provider.kind === 'none' ? 'not configured' : 'in use',
          },
        ];
  /** Redis and the write-ahead log as `/api/status`, the incident watch and the metrics see them. */
  const redisState =
    reachability && wal
      ? () => ({
          reachable: reachability.reachable,
          ...(reachability.unreachableSince !== undefined
            ? { unreachableSince: reachability.unreachableSince }
            : {}),
          writeAheadPending: wal.pendingCount,
          writeAheadReplayed: wal.replayed,
        })
      : undefined;
  /** While Redis is away or the write-ahead log still replays: what `/status` and `/readyz` say. */
  const redisOutageText = (): string | undefined => {
    if (!reachability || !wal?.engaged) return undefined;
    const since = reachability.unreachableSince;
    return since !== undefined
      ? `Redis unreachable since ${new Date(since).toISOString().slice(11, 19)}Z; ${wal.pendingCount} writes in the local log`
      : `replaying ${wal.pendingCount} writes from the local log to Redis`;
  };
  const status = (): StatusSnapshot => {
    const redisOutage = redisOutageText();
    return {
      agentName: config.agent.name,
      version,
      uptimeSeconds: (Date.now() - startedAt) / 1000,
      providers: providerStatus(),
      memoryBackend: memory.backend,
      ...(redisOutage ? { redisOutage } : {}),
      channels: Object.entries(channels?.status() ?? {}).map(([name, health]) => ({
        name,
        state: channelState(health),
      })),
      ...(cluster ? { cluster: clusterLines(cluster.view()) } : {}),
    };
  };

  // Set once the platform channels exist: a transfer's outcome reaches the person's latest chat.
  let tellPerson: ((personId: string, id: string, text: string) => Promise<void>) | undefined;
  const wallet = config.wallet.enabled
    ? await createWallet(config.wallet, {
        identity,
        logger,
        dataDir: config.memory.dataDir,
        notify: async (requester, id, text) => tellPerson?.(requester.personId, id, text),
        onOutcome: (status, intentId) => {
          metrics.onWalletTransfer(status);
          if (status === 'failed')
            void incidents.notice(
              `wallet:${intentId}:failed`,
              `wallet transfer ${intentId} failed (see /wallet history)`,
            );
        },
        ...(redis ? { redis: { client: redis, keyPrefix: config.redis.keyPrefix } } : {}),
        ...(deps.now ? { now: deps.now } : {}),
      })
    : undefined;
  if (wallet) clusterJobs.add(wallet.reconcileJob);

  const commands = [
    ...createBuiltinCommands({
      status,
      jobs: jobOutcomes,
      providersReport: async () =>
        built
          ? formatProvidersReport(built.gateway.snapshot(), await costs.snapshot())
          : 'No providers are configured.',
    }),
    ...createLinkCommands({ identity, memory }),
    ...(wallet ? [wallet.command] : []),
  ];
  const pipeline = new Pipeline({
    memory,
    identity,
    provider: () => provider,
    commands,
    ...(wallet ? { tools: wallet.tools } : {}),
    systemPrompt: config.agent.systemPrompt,
    context: config.context,
    turnTimeoutMs: config.turn.timeoutMs,
    maxMessageChars: config.turn.maxMessageChars,
    logger,
    onMessage: (channel, direction) => metrics.onMessage(channel, direction),
    ...(deps.now ? { now: deps.now } : {}),
  });

  const adapters: readonly ChannelAdapter[] =
    deps.adapters ??
    channelFactories(
      config.channels,
      {
        logger,
        ...(sharedRedis ? { redis: sharedRedis } : {}),
      },
      () => rotation?.config.channels ?? config.channels,
    ).map((factory) => {
      const adapter = factory.create();
      if (!cluster || !adapter.exclusiveConnection) return adapter;
      return new LeasedChannel({
        name: factory.name,
        sender: adapter,
        create: factory.create,
        lease: cluster.lease(`channel:${factory.name}`),
        logger,
      });
    });
  const leased = adapters.filter((a): a is LeasedChannel => a instanceof LeasedChannel);
  if (cluster && leased.length > 0) {
    // On every node: a node that holds a platform connection it cannot keep up gives it away.
    scheduler.add({
      name: 'channel-health-check',
      everyMs: CHANNEL_CHECK_EVERY_MS,
      run: async () => {
        const anotherNodeUp = cluster.view().nodes.some((n) => !n.self && n.up);
        const results = await Promise.all(
          leased.map(
            async (c) => `${c.name} ${await c.checkHealth(config.cluster.handOverAfterMs, anotherNodeUp)}`,
          ),
        );
        logger.debug({ channels: results }, 'channel health check');
      },
    });
  }
  // After an outage, no node re-runs the jobs that were in flight before every write-ahead log
  // has reached Redis.
  const replayBeacon =
    redis && reachability && wal
      ? new ReplayBeacon({
          redis,
          keyPrefix: config.redis.keyPrefix,
          node: nodeId,
          reachability,
          pending: () => wal.pendingCount,
          logger,
          ...(deps.now ? { now: deps.now } : {}),
        })
      : undefined;
  const queueDeps = {
    dataDir: config.memory.dataDir,
    keyPrefix: config.redis.keyPrefix,
    logger,
    ...(redisOptions ? { connection: redisOptions } : {}),
    ...(reachability && redis
      ? {
          outage: {
            reachability,
            redis,
            ...(replayBeacon ? { replaying: () => replayBeacon.anyReplaying() } : {}),
          },
        }
      : {}),
  };
  const outboxSettings = {
    concurrency: config.channels.outbox.concurrency,
    retryBaseMs: config.channels.outbox.retryBaseMs,
    retryMaxMs: config.channels.outbox.retryMaxMs,
  };
  const channels =
    adapters.length === 0
      ? undefined
      : new ChannelHub({
          adapters,
          pipeline,
          identity,
          inbox: createQueue('inbox', {
            ...queueDeps,
            ...outboxSettings,
            concurrency: config.channels.concurrency,
          }),
          outbox: createQueue('outbox', { ...queueDeps, ...outboxSettings }),
          router: new ReplyRouter({
            adapters,
            identity,
            config: config.channels.outbox,
            logger,
            onOutcome: (channel, outcome) => metrics.onDelivery(channel, outcome),
            ...(deps.now ? { now: deps.now } : {}),
          }),
          commands: commands.map((c) => ({ name: c.name, summary: c.summary })),
          logger,
          ...(deps.now ? { now: deps.now } : {}),
        });

  if (channels && (config.alerts.notify.length > 0 || config.alerts.owners.length > 0)) {
    alertOwners = ownerAlertDelivery({ hub: channels, identity, alerts: config.alerts, logger });
  }

  if (channels) {
    const hub = channels;
    tellPerson = async (personId, id, text) => {
      const [latest] = await identity.addresses(personId);
      if (latest) await hub.notify(id, latest.address, text);
    };
  }

  scheduler.add(
    incidentWatchJob(
      incidents,
      {
        ...(built ? { providers: () => built.gateway.snapshot() } : {}),
        ...(channels ? { channels: () => channels.status() } : {}),
        ...(cluster ? { cluster: () => cluster.view() } : {}),
        ...(redisState ? { redis: redisState } : {}),
      },
      {
        providerOpenAfterMs: config.alerts.providerOpenAfterMs,
        channelDownAfterMs: config.alerts.channelDownAfterMs,
        redisDownAfterMs: config.alerts.redisDownAfterMs,
        everyMs: config.alerts.checkEveryMs,
      },
      deps.now,
    ),
  );

  metrics.observe({
    jobs: jobOutcomes,
    ...(channels ? { queues: () => channels.pending() } : {}),
    ...(cluster
      ? {
          leases: () =>
            cluster.view().leases.map((l) => ({
              name: l.name,
              held: l.holder?.node === nodeId && l.holder.instance === cluster.instance,
            })),
        }
      : {}),
    ...(redisState ? { redis: redisState } : {}),
  });

  // `/api/status`, and what the dashboard is built from.
  const apiStatus = async () => ({
    ...status(),
    providers: built ? built.gateway.snapshot() : providerStatus(),
    costs: await orUnavailable(costs.snapshot()),
    channels: { http: http.health(), ...channels?.status() },
    ...(cluster ? { cluster: cluster.view() } : {}),
    ...(redisState ? { redis: redisState() } : {}),
    ...(channels ? { outbox: await orUnavailable(channels.pending()) } : {}),
    jobs: await orUnavailable(jobOutcomes()),
    incidents: incidents.list(),
  });
  const http: HttpChannel = new HttpChannel({
    webhooks: adapters.flatMap((a) => (a.webhook ? [a.webhook] : [])),
    config: config.http,
    pipeline,
    logger,
    readiness: async () => {
      await memory.ping();
      const providers = providerStatus();
      const healthy = providers.filter((p) => p.state === 'healthy' || p.state === 'in use').length;
      const outage = redisOutageText();
      return {
        memory: `${memory.backend}: ${outage ?? 'ok'}`,
        providers: `${healthy}/${providers.length} healthy`,
      };
    },
    history: async (personId, limit) =>
      (await memory.recentTurns(personId, limit)).map((t) => ({
        user: t.user,
        assistant: t.assistant,
        at: t.at,
      })),
    status: apiStatus,
    routes: (api) => {
      registerOpenAiCompatibleRoutes(api, () => provider);
      registerDashboardRoute(api, {
        status: apiStatus,
        usage,
        ...(redis ? { redis } : {}),
        ...(wallet ? { wallet } : {}),
        ...(deps.now ? { now: deps.now } : {}),
      });
      const holds = cluster?.outageHolds;
      if (holds) {
        // A peer keeping a platform connection through a Redis outage asks this node to stay out.
        // Not rate-limited: API traffic on the same token must not make a holder step down.
        api.post('/api/cluster/hold', { config: { rateLimit: false } }, async (request) => {
          const parsed = holdRequestSchema.safeParse(request.body);
          if (!parsed.success)
            throw new AgentError('bad_request', `invalid hold request: ${parsed.error.issues[0]?.message}`);
          return holds.promise(parsed.data);
        });
      }
      api.get('/metrics', async (_request, reply) =>
        reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
      );
    },
  });

  rotationTargets.httpTokens = (tokens) => http.setAuthTokens(tokens);
  if (channels) rotationTargets.channels = (c) => channels.renewSecrets(c);
  if (wallet) rotationTargets.walletKey = (key) => wallet.renewKey(key);
  if (rotation) {
    const check = () => {
      rotation.check().catch((error: unknown) => {
        logger.error({ err: (error as Error).message }, 'secret rotation check failed');
      });
    };
    secretSource?.on('changed', check);
    if (deps.secretFilesCheckEveryMs)
      scheduler.add({
        name: 'secret-files-check',
        everyMs: deps.secretFilesCheckEveryMs,
        run: () => rotation.check().then(() => undefined),
      });
  }

  let stopping: Promise<void> | undefined;
  return {
    config,
    logger,
    http,
    pipeline,
    memory,
    costs,
    identity,
    channels,
    gateway: built?.gateway,
    wallet,
    secrets: rotation,
    async start() {
      secretSource?.start();
      // The snapshot first: the write-ahead records left by a previous process are newer.
      snapshot?.load();
      const pendingWrites = wal?.open() ?? [];
      sharedMemory?.restorePending(pendingWrites);
      sharedIdentity?.restorePending(pendingWrites);
      sharedCosts?.restorePending(pendingWrites);
      replayBeacon?.start();
      await memory.open();
      await costs.open();
      await identity.open();
      await wallet?.start();
      await built?.state.start();
      await http.start();
      await cluster?.start();
      await channels?.start();
      await scheduler.start();
      // Not awaited: while Redis is away, the cluster job schedules are written once it answers.
      clusterJobs.start().catch((error: unknown) => {
        logger.warn({ err: (error as Error).message }, 'could not start the cluster jobs');
      });
      logger.info(
        {
          url: http.url,
          memory: memory.backend,
          providers: providerStatus().map((p) => p.id),
          channels: channels?.channelNames ?? [],
          version,
        },
        'agent listening',
      );
      return http.url;
    },
    stop() {
      stopping ??= (async () => {
        // Stopping a leased channel releases its lease: the other node takes over at once.
        await channels?.stopAdapters();
        const drained = await pipeline.drain(config.shutdown.graceMs);
        if (!drained)
          logger.warn({ inFlight: pipeline.inFlightCount }, 'shutdown grace ran out with turns in flight');
        await wallet?.stop();
        await channels?.close();
        try {
          snapshot?.saveMirrors();
        } catch (error) {
          logger.warn({ err: (error as Error).message }, 'could not save the Redis snapshot on stop');
        }
        await scheduler.stop();
        if (clusterJobs !== scheduler) await clusterJobs.stop();
        // The last second of chart counts; not waited for long while Redis is away.
        await Promise.race([usage.flush(), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
        await http.stop();
        await built?.state.stop();
        await memory.close();
        await costs.close();
        await identity.close();
        replayBeacon?.stop();
        await wal?.close();
        reachability?.close();
        await providerFetch.close();
        secretSource?.stop();
        await cluster?.stop();
        if (ownsRedis) await redis?.quit().catch(() => redis.disconnect());
        logger.info('agent stopped');
      })();
      return stopping;
    },
  };
}
