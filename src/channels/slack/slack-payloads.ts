import { z } from 'zod';

/**
 * The parts of Slack's payloads the adapter reads. Objects are not strict: Slack adds fields
 * without notice, and a new field must not make the agent drop messages.
 */

export const urlVerificationSchema = z.object({
  type: z.literal('url_verification'),
  challenge: z.string().min(1),
});

export const eventCallbackSchema = z.object({
  type: z.literal('event_callback'),
  event_id: z.string().min(1),
  team_id: z.string().optional(),
  /** Who the event is for; the bot's own user id when the app has a bot user. */
  authorizations: z.array(z.object({ user_id: z.string(), is_bot: z.boolean().optional() })).optional(),
  event: z.looseObject({ type: z.string() }),
});
export type EventCallback = z.infer<typeof eventCallbackSchema>;

export const appMentionSchema = z.object({
  type: z.literal('app_mention'),
  channel: z.string().min(1),
  user: z.string().min(1).optional(),
  text: z.string().default(''),
  ts: z.string().min(1),
  thread_ts: z.string().min(1).optional(),
  bot_id: z.string().optional(),
});

export const messageSchema = z.object({
  type: z.literal('message'),
  channel: z.string().min(1),
  /** 'im' for a direct message to the bot; 'channel', 'group', 'mpim' otherwise. */
  channel_type: z.string().optional(),
  user: z.string().min(1).optional(),
  text: z.string().default(''),
  ts: z.string().min(1),
  thread_ts: z.string().min(1).optional(),
  subtype: z.string().optional(),
  bot_id: z.string().optional(),
});

export const inboundEventSchema = z.discriminatedUnion('type', [appMentionSchema, messageSchema]);

/** A slash command: form fields over HTTP, the envelope's payload in Socket Mode. */
export const slashCommandSchema = z.object({
  command: z.string().regex(/^\/\S+$/, 'must look like /name'),
  text: z.string().default(''),
  user_id: z.string().min(1),
  channel_id: z.string().min(1),
  /** Unique per invocation; Slack never redelivers a command, so it serves as the event id. */
  trigger_id: z.string().min(1),
  team_id: z.string().optional(),
});
export type SlashCommand = z.infer<typeof slashCommandSchema>;
