import { z } from 'zod';

/**
 * Chat platform channels. Each is on when its section is present (a token in the environment
 * creates it) and `enabled` is not false; the agent starts with whatever subset is configured.
 */
const apiUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

const telegramSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** From @BotFather. */
    botToken: z.string().regex(/^\d+:[A-Za-z0-9_-]{20,}$/, 'must look like 123456:ABC-... (from @BotFather)'),
    /** Bot API root, without a trailing slash. Default Telegram's own. */
    apiRoot: apiUrl.default('https://api.telegram.org'),
    /** Long polling (default; one poller per bot) or a webhook on the HTTP channel's server. */
    mode: z.enum(['polling', 'webhook']).default('polling'),
    /** Webhook mode: Telegram must send this in X-Telegram-Bot-Api-Secret-Token. */
    webhookSecret: z
      .string()
      .regex(/^[A-Za-z0-9_-]{16,256}$/, 'must be 16-256 characters of A-Z, a-z, 0-9, "_" or "-"')
      .optional(),
    /** Webhook mode: the route on the HTTP server. */
    webhookPath: z.string().startsWith('/').default('/telegram/webhook'),
    /** Long-poll timeout in seconds. Default 30. */
    pollTimeoutSeconds: z.number().int().min(0).max(50).default(30),
  })
  .strict()
  .refine((t) => t.mode !== 'webhook' || t.webhookSecret !== undefined, {
    message: 'is required in webhook mode',
    path: ['webhookSecret'],
  });

const discordSchema = z
  .object({
    enabled: z.boolean().default(true),
    botToken: z.string().min(20, 'must be the bot token from the Developer Portal'),
    /** REST API root (`rest.api`), without the version. Default Discord's own. */
    apiRoot: apiUrl.default('https://discord.com/api'),
    /** Register slash commands in these guilds (instant); empty registers them globally. */
    guildIds: z.array(z.string().regex(/^\d+$/, 'must be a guild id (digits)')).default([]),
  })
  .strict();

const slackSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** xoxb-... */
    botToken: z.string().startsWith('xoxb-', 'must be a bot token (xoxb-...)'),
    /** Verifies every Events API and slash-command request (HTTP mode). */
    signingSecret: z.string().min(16).optional(),
    /** HTTP (Events API and slash commands on the HTTP channel's server) or Socket Mode. */
    mode: z.enum(['http', 'socket']).default('http'),
    /** Socket Mode: the app-level token (xapp-...). */
    appToken: z.string().startsWith('xapp-', 'must be an app-level token (xapp-...)').optional(),
    /** Web API root, with its trailing slash. Default Slack's own. */
    apiUrl: apiUrl.default('https://slack.com/api/'),
    eventsPath: z.string().startsWith('/').default('/slack/events'),
    commandsPath: z.string().startsWith('/').default('/slack/commands'),
  })
  .strict()
  .refine((s) => s.mode !== 'http' || s.signingSecret !== undefined, {
    message: 'is required in http mode (requests are refused without a verified signature)',
    path: ['signingSecret'],
  })
  .refine((s) => s.mode !== 'socket' || s.appToken !== undefined, {
    message: 'is required in socket mode',
    path: ['appToken'],
  });

const outboxSchema = z
  .object({
    /** A reply whose channel has been failing this long goes to the person's other channel. Default 30 s. */
    failoverAfterMs: z.number().int().min(0).default(30_000),
    /** First retry delay; doubles per attempt up to `retryMaxMs`. */
    retryBaseMs: z.number().int().min(10).default(500),
    retryMaxMs: z.number().int().min(10).default(30_000),
    /** Give up on a reply (logged as lost, counted in metrics) after this long. Default one day. */
    giveUpAfterMs: z.number().int().min(1000).default(86_400_000),
    /** Replies delivered at once. Default 16. */
    concurrency: z.number().int().min(1).max(256).default(16),
  })
  .strict();

export const channelsSchema = z
  .object({
    telegram: telegramSchema.optional(),
    discord: discordSchema.optional(),
    slack: slackSchema.optional(),
    outbox: outboxSchema.default(outboxSchema.parse({})),
    /** Inbound events handled at once (agent turns in flight from the platforms). Default 16. */
    concurrency: z.number().int().min(1).max(256).default(16),
  })
  .strict();

export type ChannelsConfig = z.infer<typeof channelsSchema>;
export type TelegramConfig = z.infer<typeof telegramSchema>;
export type DiscordConfig = z.infer<typeof discordSchema>;
export type SlackConfig = z.infer<typeof slackSchema>;
export type OutboxConfig = z.infer<typeof outboxSchema>;
export const CHANNELS_DEFAULTS: ChannelsConfig = channelsSchema.parse({});
