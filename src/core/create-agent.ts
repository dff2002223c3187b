import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { HttpChannel } from '../channels/http/http-channel.js';
import { InProcessScheduler } from '../jobs/in-process-scheduler.js';
import { findLocalProvider, selectProvider } from '../providers/create-provider.js';
import { createProviderFetch } from '../providers/http-dispatcher.js';
import type { ChatProvider } from '../providers/provider.js';
import { createBuiltinCommands, type StatusSnapshot } from './commands/builtin-commands.js';
import { collectSecrets } from './config/load-config.js';
import type { AgentConfig } from './config/schema.js';
import { AccountIdentityResolver } from './identity.js';
import { createLogger } from './logger.js';
import { LogMemoryStore } from './memory/log-memory-store.js';
import type { MemoryStore } from './memory/memory-store.js';
import { RedisMemoryStore } from './memory/redis-memory-store.js';
import { Pipeline } from './pipeline.js';
import { readPackageVersion } from './version.js';

export interface AgentDeps {
  logger?: Logger;
  /** Used instead of creating a client from `redis.url` (tests, shared connections). */
  redis?: Redis;
  /** Used instead of choosing from `providers` (tests). */
  provider?: ChatProvider;
  now?: () => number;
}

export interface Agent {
  readonly config: Readonly<AgentConfig>;
  readonly logger: Logger;
  readonly http: HttpChannel;
  readonly pipeline: Pipeline;
  readonly memory: MemoryStore;
  /** Listens, and resolves with the HTTP channel's URL. */
  start(): Promise<string>;
  /** Stops taking work, finishes in-flight turns (up to `shutdown.graceMs`), flushes and closes. */
  stop(): Promise<void>;
}

/** Builds every part of the agent from its config; nothing is global, so tests can build several. */
export async function createAgent(config: Readonly<AgentConfig>, deps: AgentDeps = {}): Promise<Agent> {
  const logger = deps.logger ?? createLogger({ level: config.log.level, secrets: collectSecrets(config) });
  const startedAt = Date.now();
  const version = readPackageVersion();

  const ownsRedis = deps.redis === undefined && config.redis.url !== undefined;
  const redis =
    deps.redis ??
    (config.redis.url
      ? new Redis(config.redis.url, {
          // Fail a request quickly while Redis is away rather than queueing it for minutes.
          maxRetriesPerRequest: 2,
          connectTimeout: 3000,
          lazyConnect: false,
        })
      : undefined);
  redis?.on('error', (error: Error) => logger.warn({ err: error.message }, 'redis connection error'));

  const memory: MemoryStore = redis
    ? new RedisMemoryStore({
        redis,
        keyPrefix: config.redis.keyPrefix,
        retainTurns: config.memory.retainTurns,
        dedupeTtlSeconds: config.memory.dedupeTtlSeconds,
        claimTtlMs: config.turn.timeoutMs + 5000,
      })
    : new LogMemoryStore({
        dataDir: config.memory.dataDir,
        retainTurns: config.memory.retainTurns,
        dedupeTtlSeconds: config.memory.dedupeTtlSeconds,
        logger,
        ...(deps.now ? { now: deps.now } : {}),
      });

  const providerFetch = createProviderFetch();
  let provider = deps.provider ?? (await selectProvider(config, { logger, fetch: providerFetch.fetch }));
  const scheduler = new InProcessScheduler(logger);
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

  const status = (): StatusSnapshot => ({
    agentName: config.agent.name,
    version,
    uptimeSeconds: (Date.now() - startedAt) / 1000,
    provider: { id: provider.id, model: provider.model },
    memoryBackend: memory.backend,
  });

  const pipeline = new Pipeline({
    memory,
    identity: new AccountIdentityResolver(),
    provider: () => provider,
    commands: createBuiltinCommands(status),
    systemPrompt: config.agent.systemPrompt,
    context: config.context,
    turnTimeoutMs: config.turn.timeoutMs,
    maxMessageChars: config.turn.maxMessageChars,
    logger,
    ...(deps.now ? { now: deps.now } : {}),
  });

  const http: HttpChannel = new HttpChannel({
    config: config.http,
    pipeline,
    logger,
    readiness: async () => {
      await memory.ping();
      return {
        memory: `${memory.backend}: ok`,
        provider: provider.id === 'none' ? 'not configured' : provider.id,
      };
    },
    history: async (personId, limit) =>
      (await memory.recentTurns(personId, limit)).map((t) => ({
        user: t.user,
        assistant: t.assistant,
        at: t.at,
      })),
    status: (): unknown => ({ ...status(), channels: { http: http.health() }, jobs: scheduler.outcomes() }),
  });

  let stopping: Promise<void> | undefined;
  return {
    config,
    logger,
    http,
    pipeline,
    memory,
    async start() {
      await memory.open();
      await http.start();
      logger.info(
        { url: http.url, memory: memory.backend, provider: provider.id, model: provider.model, version },
        'agent listening',
      );
      return http.url;
    },
    stop() {
      stopping ??= (async () => {
        const drained = await pipeline.drain(config.shutdown.graceMs);
        if (!drained)
          logger.warn({ inFlight: pipeline.inFlightCount }, 'shutdown grace ran out with turns in flight');
        await scheduler.stop();
        await http.stop();
        await memory.close();
        await providerFetch.close();
        if (ownsRedis) await redis?.quit().catch(() => redis.disconnect());
        logger.info('agent stopped');
      })();
      return stopping;
    },
  };
}
