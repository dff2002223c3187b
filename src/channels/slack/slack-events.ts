import type { ChannelEvent } from '../channel-adapter.js';
import { type EventCallback, inboundEventSchema, type SlashCommand } from './slack-payloads.js';
import { unescapeSlackText } from './slack-text.js';

/**
 * The answer to a slash command the agent could not take. Slack never redelivers a command, and
 * shows a non-200 as a bare failure, so the person gets an ephemeral sentence saying what to do.
 */
export const COMMAND_NOT_TAKEN = {
  response_type: 'ephemeral',
  text: 'Sorry, I could not take that command just now. Please try again in a moment.',
};

/**
 * Message subtypes that are still a person writing to the bot; every other subtype
 * (message_changed, message_deleted, bot_message, channel_join, ...) is not a new request.
 */
const PERSON_SUBTYPES = new Set(['file_share', 'thread_broadcast']);

/**
 * Turns an Events API callback into the agent's event, or undefined when it is not for the agent:
 * an event type we do not handle, a bot's message (ours included, so the bot never answers
 * itself), an edit or deletion, a channel message without a mention, or nothing left to answer.
 *
 * `eventId` is Slack's `event_id`, which Slack keeps across its retries, so the agent's dedupe
 * drops a retried delivery.
 */
export function eventFromCallback(
  body: EventCallback,
  botUserId: string | undefined,
): ChannelEvent | undefined {
  const parsed = inboundEventSchema.safeParse(body.event);
  if (!parsed.success) return undefined;
  const event = parsed.data;
  // Before auth.test has answered, the callback itself names the bot it was sent to.
  const bot = botUserId ?? body.authorizations?.find((a) => a.is_bot === true)?.user_id;
  if (event.user === undefined || event.bot_id !== undefined || event.user === bot) return undefined;

  let thread: string | undefined;
  if (event.type === 'message') {
    if (event.channel_type !== 'im') return undefined;
    if (event.subtype !== undefined && !PERSON_SUBTYPES.has(event.subtype)) return undefined;
    // A DM is already a private conversation: answer beside the message, or in its thread if
    // the person wrote in one, rather than opening a thread under every message.
    thread = event.thread_ts;
  } else {
    // A mention inside a DM also arrives as message.im; taking only that one avoids two answers.
    if (event.channel.startsWith('D')) return undefined;
    // In a channel, answer in the thread the mention came from, or start one under it.
    thread = event.thread_ts ?? event.ts;
  }

  const text = unescapeSlackText(stripMention(event.text, bot)).trim();
  if (text.length === 0) return undefined;
  return {
    eventId: body.event_id,
    userId: event.user,
    text,
    address: { channel: 'slack', conversation: event.channel, ...(thread === undefined ? {} : { thread }) },
  };
}

/**
 * Removes the bot's own mention (`<@U123>` or `<@U123|name>`) wherever it is. Without the bot's
 * id, only a leading mention goes, as that is how a mention addresses the bot.
 */
export function stripMention(text: string, botUserId: string | undefined): string {
  if (botUserId === undefined) return text.replace(/^\s*<@[A-Z0-9]+(?:\|[^>]*)?>/, '');
  const escaped = botUserId.replace(/[^A-Za-z0-9]/g, '');
  return text.replace(new RegExp(`<@${escaped}(?:\\|[^>]*)?>`, 'g'), '');
}

/**
 * A slash command as the agent's `/name args` text. Slack's command name is ours: `/status` in
 * the Slack app runs the agent's `status`. Replies go to the channel the command was typed in.
 */
export function eventFromCommand(command: SlashCommand): ChannelEvent {
  const args = unescapeSlackText(command.text).trim();
  return {
    eventId: command.trigger_id,
    userId: command.user_id,
    text: args.length > 0 ? `${command.command} ${args}` : command.command,
    address: { channel: 'slack', conversation: command.channel_id },
  };
}
