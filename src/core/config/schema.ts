import { z } from 'zod';
import { CHANNELS_DEFAULTS, channelsSchema } from '../../channels/channels-config.js';
import { budgetConfigSchema } from '../../providers/budget/budget-config.js';
import { walletSchema } from '../../wallet/wallet-config.js';
import { CLUSTER_DEFAULTS, clusterSchema } from '../cluster/cluster-config.js';
import { parseHostPort } from '../redis/host-port.js';
import { gatewaySchema, routingFields } from './gateway-schema.js';

const alertTargetSchema = z.preprocess(
  (value) => {
    if (typeof value !== 'string') return value;
    const at = value.indexOf(':');
    // Without a ":" it cannot name a chat; the object check then says which part is missing.
    return at < 0 ? { channel: value } : { channel: value.slice(0, at), conversation: value.slice(at + 1) };
  },
  z
    .object({
      channel: z.enum(['telegram', 'discord', 'slack'], { error: 'must be telegram, discord or slack' }),
      conversation: z.string().min(1).max(100),
    })
    .strict(),
);

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || host.startsWith('127.');
}

const providerId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'must be 1-32 characters of a-z, 0-9, "_" or "-"');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

const openAiProviderSchema = z
  .object({
    id: providerId,
    /** OpenAI itself or any OpenAI-compatible endpoint (DeepSeek, Ollama, vLLM, OpenRouter). */
    kind: z.literal('openai'),
    /** Optional only for endpoints that need none (a local Ollama or vLLM). */
    apiKey: z.string().min(1).optional(),
    /** Default: OpenAI's own API. */
    baseURL: httpUrl.optional(),
    model: z.string().min(1).default('gpt-4o-mini'),
    /** Default 60 s: the SDK's own timeout for one call. */
    timeoutMs: z.number().int().positive().default(60_000),
    ...routingFields,
  })
  .strict();

const anthropicProviderSchema = z
  .object({
    id: providerId,
    kind: z.literal('anthropic'),
    apiKey: z.string().min(1),
    /** Without the trailing `/v1`. Default: Anthropic's own API. */
    baseURL: httpUrl.optional(),
    model: z.string().min(1).default('claude-sonnet-4-5'),
    /** Anthropic requires an explicit output limit. Default 1024. */
    maxOutputTokens: z.number().int().positive().max(64_000).default(1024),
    timeoutMs: z.number().int().positive().default(60_000),
    ...routingFields,
  })
  .strict();

const azureOpenAiProviderSchema = z
  .object({
    id: providerId,
    kind: z.literal('azure-openai'),
    /** The resource endpoint, e.g. https://my-resource.openai.azure.com (http only on loopback, for tests). */
    endpoint: httpUrl.refine(
      (url) => url.startsWith('https:') || isLoopbackHost(new URL(url).hostname.replace(/^\[|\]$/g, '')),
      'must be an https:// URL',
    ),
    /** The data-plane API version, e.g. 2024-10-21. */
    apiVersion: z.string().min(1),
    /** The deployment name; requests go to /openai/deployments/{deployment}/chat/completions. */
    deployment: z.string().min(1),
    apiKey: z.string().min(1),
    /** The model behind the deployment, for pricing and reports. Default: the deployment name. */
    model: z.string().min(1).optional(),
    timeoutMs: z.number().int().positive().default(60_000),
    ...routingFields,
  })
  .strict()
  .transform((provider) => ({ ...provider, model: provider.model ?? provider.deployment }));

const ALERTS_DEFAULTS = {
  notify: [],
  owners: [],
  providerOpenAfterMs: 60_000,
  channelDownAfterMs: 120_000,
  redisDownAfterMs: 5000,
  checkEveryMs: 5000,
};

export const providerSchema = z.discriminatedUnion('kind', [
  openAiProviderSchema,
  anthropicProviderSchema,
  azureOpenAiProviderSchema,
]);

export const configSchema = z
  .object({
    agent: z
      .object({
        /** Shown in `/status` and logs. Default "agent". */
        name: z.string().min(1).max(64).default('agent'),
        /** Sent as the system prompt of every agent turn. */
        systemPrompt: z.string().min(1).max(20_000).default('You are a helpful, concise assistant.'),
      })
      .strict()
      .default({ name: 'agent', systemPrompt: 'You are a helpful, concise assistant.' }),
    http: z
      .object({
        /** Default 127.0.0.1. Any other address requires `authTokens`. */
        host: z.string().min(1).default('127.0.0.1'),
        /** Default 8080; 0 picks a free port (tests). */
        port: z.number().int().min(0).max(65_535).default(8080),
        /** Bearer tokens accepted by the API. Empty: no auth, allowed on loopback only. */
        authTokens: z.array(z.string().min(16, 'must be at least 16 characters')).default([]),
        /** Largest accepted request body. Default 64 KiB. */
        bodyLimitBytes: z
          .number()
          .int()
          .min(1024)
          .max(10 * 1024 * 1024)
          .default(65_536),
        /** Requests per window per token (or per IP without a token). Default 600 a minute. */
        rateLimit: z
          .object({
            max: z.number().int().positive().default(600),
            windowMs: z.number().int().positive().default(60_000),
          })
          .strict()
          .default({ max: 600, windowMs: 60_000 }),
      })
      .strict()
      .default({
        host: '127.0.0.1',
        port: 8080,
        authTokens: [],
        bodyLimitBytes: 65_536,
        rateLimit: { max: 600, windowMs: 60_000 },
      }),
    memory: z
      .object({
        /** Where the local append-only log lives. Default "data". */
        dataDir: z.string().min(1).default('data'),
        /** Turns kept per person in Redis and in the log's in-memory index. Default 500. */
        retainTurns: z.number().int().min(1).max(100_000).default(500),
        /** How long an inbound event id is remembered for deduplication. Default one day. */
        dedupeTtlSeconds: z.number().int().min(60).default(86_400),
        /**
         * Summarises each person's turns older than `context.maxTurns` with the provider; the
         * summary is sent ahead of the recent turns. On by default, every 10 minutes.
         */
        compaction: z
          .object({
            enabled: z.boolean().default(true),
            everyMs: z.number().int().min(1000).default(600_000),
          })
          .strict()
          .default({ enabled: true, everyMs: 600_000 }),
      })
      .strict()
      .default({
        dataDir: 'data',
        retainTurns: 500,
        dedupeTtlSeconds: 86_400,
        compaction: { enabled: true, everyMs: 600_000 },
      }),
    context: z
      .object({
        /** Most turns (a message and its reply) sent as context. Default 20. */
        maxTurns: z.number().int().min(0).max(1000).default(20),
        /** Approximate token budget for context plus the new message. Default 6000. */
        maxTokens: z.number().int().min(100).max(1_000_000).default(6000),
      })
      .strict()
      .default({ maxTurns: 20, maxTokens: 6000 }),
    redis: z
      .object({
        /** When set, memory and dedupe live in Redis. Set this or `sentinels`, not both. */
        url: z
          .string()
          .regex(/^rediss?:\/\/.+/, 'must start with redis:// or rediss://')
          .optional(),
        /**
         * Redis Sentinel addresses ("host:port"). When set, the agent asks them for the current
         * primary of `masterName` and follows it through failovers. Set this or `url`, not both.
         */
        sentinels: z
          .array(
            z
              .string()
              .refine(
                (text) => parseHostPort(text) !== undefined,
                'must be "host:port", e.g. 10.0.0.5:26379',
              ),
          )
          .min(1, 'must list at least one sentinel')
          .optional(),
        /** The name the sentinels monitor the primary under (`sentinel monitor <name> ...`). Default "mymaster". */
        masterName: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, "_", "." or "-"')
          .default('mymaster'),
        /** The Redis password: with `sentinels`, the primary's (and replicas'); with `url`, when the URL has none. */
        password: z.string().min(1).optional(),
        /** The sentinels' own password (`requirepass` in sentinel.conf), when they have one. */
        sentinelPassword: z.string().min(1).optional(),
        /** Prefix of every key, so several agents can share one Redis. Default "agent". */
        keyPrefix: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, "_", "." or "-"')
          .default('agent'),
        /**
         * The `redis-snapshot` job: how often each node copies the shared state it needs to keep
         * answering through a Redis outage to `data/redis-snapshot.json`, and for how many of the
         * most recently seen persons it saves the context window.
         */
        snapshot: z
          .object({
            everyMs: z.number().int().min(1000).max(86_400_000).default(60_000),
            maxPersons: z.number().int().min(0).max(1_000_000).default(5000),
          })
          .strict()
          .default({ everyMs: 60_000, maxPersons: 5000 }),
      })
      .strict()
      .default({
        keyPrefix: 'agent',
        masterName: 'mymaster',
        snapshot: { everyMs: 60_000, maxPersons: 5000 },
      }),
    /** Several servers on one Redis: node id, lease timing, mesh address. */
    cluster: clusterSchema.default(CLUSTER_DEFAULTS),
    /** The LLM providers the gateway chooses among; `priority` order is their order here. */
    providers: z.array(providerSchema).default([]),
    gateway: gatewaySchema.default(gatewaySchema.parse({})),
    /** Discord, Telegram and Slack, each on when configured; the outbox that delivers their replies. */
    channels: channelsSchema.default(CHANNELS_DEFAULTS),
    budgets: budgetConfigSchema.default(budgetConfigSchema.parse({})),
    /** With no provider configured, probe a local OpenAI-compatible server (Ollama) at start. */
    localProbe: z
      .object({
        enabled: z.boolean().default(true),
        baseURL: httpUrl.default('http://127.0.0.1:11434/v1'),
        timeoutMs: z.number().int().positive().max(10_000).default(500),
        /** While no provider is found, probe again this often, so a server started later is used. */
        everyMs: z.number().int().min(1000).default(30_000),
      })
      .strict()
      .default({ enabled: true, baseURL: 'http://127.0.0.1:11434/v1', timeoutMs: 500, everyMs: 30_000 }),
    turn: z
      .object({
        /** Deadline for one agent turn, provider call included. Default 60 s. */
        timeoutMs: z.number().int().positive().max(600_000).default(60_000),
        /** Longest accepted inbound message. Default 16,000 characters. */
        maxMessageChars: z.number().int().positive().max(1_000_000).default(16_000),
      })
      .strict()
      .default({ timeoutMs: 60_000, maxMessageChars: 16_000 }),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
    shutdown: z
      .object({
        /** How long in-flight turns may take after SIGINT/SIGTERM. Keep below PM2's kill_timeout. */
        graceMs: z.number().int().positive().max(120_000).default(8000),
      })
      .strict()
      .default({ graceMs: 8000 }),
    /** Maintenance jobs (memory compaction, budget roll-up, health probes). */
    jobs: z
      .object({
        /** Tries per run of a cluster job (BullMQ), the first included. Default 3. */
        attempts: z.number().int().min(1).max(20).default(3),
        /** Delay before a failed run's first retry, doubling for each further one. Default 5 s. */
        backoffMs: z.number().int().min(1).max(3_600_000).default(5000),
        /** Failed runs in a row of one job that raise an alert (logged, and sent to `alerts.notify`). Default 3. */
        alertAfterFailures: z.number().int().min(1).max(1000).default(3),
      })
      .strict()
      .default({ attempts: 3, backoffMs: 5000, alertAfterFailures: 3 }),
    /** The Solana wallet (off by default): key, cluster, owners, caps and allowlist. */
    wallet: walletSchema.default(walletSchema.parse({})),
    alerts: z
      .object({
        /**
         * The owners' chats that get operational alerts (a maintenance job failing again and
         * again), as `{ channel, conversation }` or `"channel:conversation"` (`telegram:123456`,
         * `slack:D0123ABC`, `discord:<channel id>`). Default none: alerts are only logged.
         */
        notify: z.array(alertTargetSchema).default([]),
        /**
         * The owners' accounts (`telegram:123456`, `slack:U0123ABC`): each alert also goes to the
         * chat where that person was heard from last, on whichever platform. Default none.
         */
        owners: z
          .array(
            z
              .string()
              .regex(
                /^(telegram|discord|slack|http):.+$/,
                'must be "<channel>:<user id>", e.g. telegram:123456',
              ),
          )
          .default([]),
        /** A provider whose circuit breaker stays open this long is reported. Default 60 000 ms. */
        providerOpenAfterMs: z.number().int().min(0).default(60_000),
        /** A platform connection down (or held by no node) this long is reported. Default 120 000 ms. */
        channelDownAfterMs: z.number().int().min(0).default(120_000),
        /** Redis unreachable this long is reported. Default 5000 ms. */
        redisDownAfterMs: z.number().int().min(0).default(5000),
        /** How often each node looks for incidents. Default 5000 ms. */
        checkEveryMs: z.number().int().min(100).default(5000),
      })
      .strict()
      .default(ALERTS_DEFAULTS),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (!isLoopbackHost(config.http.host) && config.http.authTokens.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['http', 'authTokens'],
        message: `is empty while http.host is "${config.http.host}", which is not a loopback address`,
        params: {
          fix: 'set HTTP_AUTH_TOKENS (comma-separated, 16+ characters each) or bind http.host to 127.0.0.1',
        },
      });
    }
    checkRedisSettings(config.redis, ctx);
    config.wallet.owners.forEach((owner, index) => {
      const channel = owner.slice(0, owner.indexOf(':'));
      // An HTTP caller names its own conversation id; only a token-holding caller may claim one.
      if (channel === 'http' && config.http.authTokens.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['wallet', 'owners', index],
          message: `is an HTTP account, but the HTTP channel has no auth tokens, so anyone could claim it`,
          params: { fix: 'set HTTP_AUTH_TOKENS, or name the owner by a Telegram, Discord or Slack account' },
        });
      }
    });
    config.alerts.notify.forEach((target, index) => {
      if (config.channels[target.channel]?.enabled) return;
      ctx.addIssue({
        code: 'custom',
        path: ['alerts', 'notify', index, 'channel'],
        message: `is "${target.channel}", which is not configured`,
        params: { fix: `configure channels.${target.channel} or remove this alert target` },
      });
    });
    const seen = new Set<string>();
    config.providers.forEach((provider, index) => {
      if (seen.has(provider.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['providers', index, 'id'],
          message: `repeats the id "${provider.id}"`,
          params: { fix: 'give every provider a unique id' },
        });
      }
      seen.add(provider.id);
      if (provider.kind === 'openai' && provider.apiKey === undefined && provider.baseURL === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['providers', index, 'apiKey'],
          message: "is missing, and OpenAI's own API needs one",
          params: {
            fix: 'set OPENAI_API_KEY (or OPENAI_API_KEY_FILE), or a baseURL for a keyless local server',
          },
        });
      }
    });
  });

/** One Redis (`url`) or a Sentinel group (`sentinels`), and passwords only where they are used. */
function checkRedisSettings(
  redis: { url?: string; sentinels?: string[]; password?: string; sentinelPassword?: string },
  ctx: z.RefinementCtx,
): void {
  if (redis.url !== undefined && redis.sentinels !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['redis', 'sentinels'],
      message: 'is set together with redis.url; the agent uses one Redis or one Sentinel group',
      params: {
        fix: 'unset REDIS_URL to use Sentinel, or unset REDIS_SENTINELS to use the one Redis at REDIS_URL',
      },
    });
  }
  if (redis.sentinelPassword !== undefined && redis.sentinels === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['redis', 'sentinelPassword'],
      message: 'is set but redis.sentinels is not',
      params: { fix: 'set REDIS_SENTINELS to the sentinels it belongs to, or unset REDIS_SENTINEL_PASSWORD' },
    });
  }
  if (redis.password === undefined) return;
  if (redis.url === undefined && redis.sentinels === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['redis', 'password'],
      message: 'is set but neither redis.url nor redis.sentinels is',
      params: { fix: 'set REDIS_URL or REDIS_SENTINELS, or unset REDIS_PASSWORD' },
    });
  } else if (redis.url !== undefined && urlHasPassword(redis.url)) {
    ctx.addIssue({
      code: 'custom',
      path: ['redis', 'password'],
      message: 'is set while redis.url carries a password too',
      params: { fix: 'keep the password in one place: in REDIS_URL or in REDIS_PASSWORD' },
    });
  }
}

function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

export type AgentConfig = z.infer<typeof configSchema>;
export type ProviderConfig = z.infer<typeof providerSchema>;
