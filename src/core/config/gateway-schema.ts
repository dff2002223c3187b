import { z } from 'zod';

/** Routing and failover settings of the provider gateway. Every default is listed here. */
export const gatewaySchema = z
  .object({
    /** priority: config order (or each provider's `priority`); cost: cheapest first; latency: fastest first; weighted: random by `weight`. */
    strategy: z.enum(['priority', 'cost', 'latency', 'weighted']).default('priority'),
    /** Total time for one request, failovers included. Default 30 s. */
    deadlineMs: z.number().int().min(100).max(600_000).default(30_000),
    /** One provider's share before failing over. Default 12 s. */
    attemptTimeoutMs: z.number().int().min(50).max(600_000).default(12_000),
    /** A stream silent this long (before its first token, or between tokens) fails over. Default 8 s. */
    firstTokenDeadlineMs: z.number().int().min(50).max(600_000).default(8000),
    hedge: z
      .object({
        /** Default off: hedging can double the cost of slow requests. */
        enabled: z.boolean().default(false),
        /** Default: the primary's observed p95 latency. */
        delayMs: z.number().int().min(1).optional(),
      })
      .strict()
      .default({ enabled: false }),
    /** A content refusal tries the next provider (default) or is returned as it is. */
    onRefusal: z.enum(['failover', 'return']).default('failover'),
    /** Cooldown after a 429 that names no retry time. Default 5 s. */
    defaultCooldownMs: z.number().int().min(0).default(5000),
    /** Output tokens assumed for budget estimates when a request sets none. Default 1024. */
    defaultMaxOutputTokens: z.number().int().min(1).default(1024),
    breaker: z
      .object({
        /** Open after this many failures in a row. Default 5. */
        consecutiveFailures: z.number().int().min(1).default(5),
        /** ...or when more than this share of the last `windowSize` calls failed. Default 0.5 of 20. */
        failureRate: z.number().gt(0).max(1).default(0.5),
        windowSize: z.number().int().min(2).default(20),
        minimumCalls: z.number().int().min(1).default(10),
        /** An open breaker waits this long before a health probe may close it. Default 5 s. */
        halfOpenAfterMs: z.number().int().min(10).default(5000),
      })
      .strict()
      .default({
        consecutiveFailures: 5,
        failureRate: 0.5,
        windowSize: 20,
        minimumCalls: 10,
        halfOpenAfterMs: 5000,
      }),
    /** Active health checks: every provider is probed this often. Default 15 s. */
    probeEveryMs: z.number().int().min(100).default(15_000),
  })
  .strict();

export type GatewayConfig = z.infer<typeof gatewaySchema>;
export const GATEWAY_DEFAULTS: GatewayConfig = gatewaySchema.parse({});

/** Per-provider routing settings, shared by every provider kind. */
export const routingFields = {
  /** Lower goes first under the `priority` strategy. Default: the provider's place in the list. */
  priority: z.number().int().optional(),
  /** Share of traffic under the `weighted` strategy. Default 1. */
  weight: z.number().min(0).default(1),
  /** Prompt plus reply, in tokens. Default: known for common models, else 32,000. */
  contextWindow: z.number().int().positive().optional(),
  /** Whether the model can take tools. Default true. */
  tools: z.boolean().default(true),
  /** Whether the endpoint can stream. Default true. */
  streaming: z.boolean().default(true),
  /** USD per million tokens; overrides the built-in price table (0 for a free local model). */
  price: z
    .object({ inputPerMTok: z.number().min(0), outputPerMTok: z.number().min(0) })
    .strict()
    .optional(),
};
