import { z } from 'zod';
import type { ChannelEvent } from '../channel-adapter.js';

/** The parts of a Bot API `Update` the adapter reads; everything else passes through unchecked. */
const userSchema = z.looseObject({ id: z.number().int(), is_bot: z.boolean() });
const entitySchema = z.looseObject({
  type: z.string(),
  offset: z.number().int().min(0),
  length: z.number().int().min(1),
  user: userSchema.optional(),
});
const messageSchema = z.looseObject({
  message_id: z.number().int(),
  from: userSchema.optional(),
  chat: z.looseObject({ id: z.number().int(), type: z.string() }),
  text: z.string().optional(),
  entities: z.array(entitySchema).optional(),
  reply_to_message: z.looseObject({ message_id: z.number().int(), from: userSchema.optional() }).optional(),
});
export const updateSchema = z.looseObject({
  update_id: z.number().int().min(0),
  message: messageSchema.optional(),
});

type Message = z.infer<typeof messageSchema>;
type Entity = z.infer<typeof entitySchema>;

export interface BotIdentity {
  id: number;
  username: string;
}

export type InboundResult =
  | { kind: 'event'; updateId: number; event: ChannelEvent }
  | { kind: 'ignored'; updateId: number; reason: string }
  | { kind: 'invalid'; issues: string };

/**
 * Turns one update into the agent's event, or says why not. Private chats are always answered;
 * groups only when the message mentions the bot (`@username`, or a text mention of its user),
 * answers one of its messages, or is a command addressed to it (`/name@botname`), because with
 * privacy mode off a bot sees every message in the group.
 */
export function parseInbound(raw: unknown, bot: BotIdentity): InboundResult {
  const parsed = updateSchema.safeParse(raw);
  if (!parsed.success) return { kind: 'invalid', issues: z.prettifyError(parsed.error) };
  const updateId = parsed.data.update_id;
  const message = parsed.data.message;
  const ignored = (reason: string): InboundResult => ({ kind: 'ignored', updateId, reason });
  if (message === undefined) return ignored('not a new message');
  if (message.text === undefined) return ignored('no text');
  if (message.from === undefined || message.from.is_bot) return ignored('not from a person');
  const chatType = message.chat.type;
  if (chatType !== 'private' && chatType !== 'group' && chatType !== 'supergroup')
    return ignored(`chat type ${chatType}`);

  const text = message.text;
  const entities = message.entities ?? [];
  const ownMentions = entities.filter((e) => isOwnMention(text, e, bot));
  const command = commandAtStart(text, entities);
  if (command?.target !== undefined && command.target.toLowerCase() !== bot.username.toLowerCase())
    return ignored('command for another bot');
  const addressed =
    chatType === 'private' ||
    ownMentions.length > 0 ||
    command?.target !== undefined ||
    message.reply_to_message?.from?.id === bot.id;
  if (!addressed) return ignored('group message not addressed to the bot');

  const cleaned = cleanText(text, ownMentions, command);
  if (cleaned.length === 0) return ignored('nothing left after the mention');
  return { kind: 'event', updateId, event: toEvent(message, cleaned) };
}

function toEvent(message: Message, text: string): ChannelEvent {
  const chatId = String(message.chat.id);
  return {
    // Chat and message ids, not the update id: the same message has the same id whether it came by
    // webhook or by polling, and after a switch between the two.
    eventId: `${chatId}:${message.message_id}`,
    userId: String(message.from?.id),
    text,
    address: { channel: 'telegram', conversation: chatId, thread: String(message.message_id) },
  };
}

function isOwnMention(text: string, entity: Entity, bot: BotIdentity): boolean {
  if (entity.type === 'text_mention') return entity.user?.id === bot.id;
  if (entity.type !== 'mention') return false;
  return entitySlice(text, entity).toLowerCase() === `@${bot.username.toLowerCase()}`;
}

interface Command {
  entity: Entity;
  name: string;
  target: string | undefined;
}

function commandAtStart(text: string, entities: readonly Entity[]): Command | undefined {
  const entity = entities.find((e) => e.type === 'bot_command' && e.offset === 0);
  if (entity === undefined) return undefined;
  const [name = '', target] = entitySlice(text, entity).split('@');
  return { entity, name, target };
}

/** Entity offsets and lengths count UTF-16 code units, as JavaScript strings do. */
function entitySlice(text: string, entity: Entity): string {
  return text.slice(entity.offset, entity.offset + entity.length);
}

/** Removes the bot's mentions and the `@botname` of a command, right to left so offsets hold. */
function cleanText(text: string, mentions: readonly Entity[], command: Command | undefined): string {
  const edits = mentions.map((e) => ({ entity: e, replacement: '' }));
  if (command !== undefined) edits.push({ entity: command.entity, replacement: command.name });
  edits.sort((a, b) => b.entity.offset - a.entity.offset);
  let out = text;
  for (const { entity, replacement } of edits) {
    const before = out.slice(0, entity.offset);
    const after = out.slice(entity.offset + entity.length);
    if (replacement === '') {
      // "@bot, hi" and "hi @bot: what" read as vocatives: drop the punctuation with the name, and
      // leave one space between the words on either side.
      const punctuated = /^[ \t]*[,:]/.test(after);
      // "tell me, @bot, a joke": the commas around the name go with it.
      const left = before.replace(punctuated ? /,?[ \t]*$/ : /[ \t]+$/, '');
      const right = after.replace(/^[ \t]*[,:]?[ \t]*/, '');
      const joiner = /\S$/.test(left) && /^[^\s.!?,;:]/.test(right) ? ' ' : '';
      out = `${left}${joiner}${right}`;
    } else {
      out = `${before}${replacement}${after}`;
    }
  }
  return out.trim();
}
