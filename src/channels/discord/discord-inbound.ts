import { z } from 'zod';
import type { ChannelEvent } from '../channel-adapter.js';

const snowflake = z.string().regex(/^\d{1,20}$/, 'must be a snowflake');

/**
 * The fields of a discord.js `Message` the adapter relies on. discord.js builds the object from
 * whatever the gateway sent, so a field Discord left out shows up here as `undefined` rather than
 * as a crash further on.
 */
export const inboundMessageSchema = z.object({
  id: snowflake,
  channelId: snowflake,
  guildId: snowflake.nullable(),
  authorId: snowflake,
  authorIsBot: z.boolean(),
  type: z.number().int(),
  content: z.string(),
  mentionsBot: z.boolean(),
});
export type InboundMessage = z.infer<typeof inboundMessageSchema>;

export const inboundCommandSchema = z.object({
  id: snowflake,
  commandName: z.string().regex(/^[-_\p{L}\p{N}]{1,32}$/u),
  channelId: snowflake,
  userId: snowflake,
  options: z.array(
    z.object({ name: z.string(), value: z.union([z.string(), z.number(), z.boolean()]).optional() }),
  ),
});
export type InboundCommand = z.infer<typeof inboundCommandSchema>;

/** Why a valid message is not for the agent, or undefined when it is. */
export function ignoreReason(message: InboundMessage): string | undefined {
  // 0 DEFAULT and 19 REPLY are what people write; joins, pins, boosts and the like are not.
  if (message.type !== 0 && message.type !== 19) return `system message (type ${message.type})`;
  // Bots (itself included) never reach the agent: two bots answering each other would loop.
  if (message.authorIsBot) return 'from a bot';
  // In a server the bot speaks only when spoken to; every DM is for it.
  if (message.guildId !== null && !message.mentionsBot) return 'guild message without a mention';
  return undefined;
}

/** Removes the bot's mentions (`<@id>` and the older nickname form `<@!id>`). */
export function stripMention(content: string, botId: string): string {
  return content
    .replace(new RegExp(`<@!?${botId}>`, 'g'), ' ')
    .replace(/[ \t]{2,}/g, ' ')
    .trim();
}

export function messageEvent(message: InboundMessage, botId: string): ChannelEvent {
  return {
    eventId: message.id,
    userId: message.authorId,
    text: stripMention(message.content, botId),
    // The message id as `thread`: the reply is sent as a Discord reply to it.
    address: { channel: 'discord', conversation: message.channelId, thread: message.id },
  };
}

/** `/name args`, the form every channel hands the core's command parser. */
export function commandText(command: InboundCommand): string {
  const args = command.options
    .map((option) => (option.value === undefined ? '' : String(option.value).trim()))
    .filter((value) => value.length > 0);
  return [`/${command.commandName}`, ...args].join(' ');
}

/** Zod's issues as one short line for a log. */
export function issuesText(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}
