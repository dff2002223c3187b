import { z } from 'zod';
import { CHANNELS_DEFAULTS, channelsSchema } from '../../channels/channels-config.js';
import { budgetConfigSchema } from '../../providers/budget/budget-config.js';
import { gatewaySchema, routingFields } from './gateway-schema.js';

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
      })
      .strict()
      .default({ dataDir: 'data', retainTurns: 500, dedupeTtlSeconds: 86_400 }),
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
        /** When set, memory and dedupe live in Redis. */
        url: z
          .string()
          .regex(/^rediss?:\/\/.+/, 'must start with redis:// or rediss://')
          .optional(),
        /** Prefix of every key, so several agents can share one Redis. Default "agent". */
        keyPrefix: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, "_", "." or "-"')
          .default('agent'),
      })
      .strict()
      .default({ keyPrefix: 'agent' }),
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

export type AgentConfig = z.infer<typeof configSchema>;
export type ProviderConfig = z.infer<typeof providerSchema>;
