import { type REST, Routes } from 'discord.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ChannelEvent } from '../channel-adapter.js';
import { type InboundMessage, ignoreReason, issuesText, messageEvent } from './discord-inbound.js';

/**
 * Where the agent got to in each Discord channel, shared by the servers. Discord gives a fresh
 * gateway session nothing that was posted before it connected, so the node that takes the gateway
 * over reads each recently active channel's messages after its cursor over REST instead.
 */
export interface DiscordCursorStore {
  /** Records that `messageId` was accepted; a cursor only moves forward. */
  advance(channelId: string, messageId: string, guildId: string | null): Promise<void>;
  /** Channels with a message accepted within `withinMs`, with the newest accepted id in each. */
  recent(withinMs: number): Promise<{ channelId: string; messageId: string; guildId: string | null }[]>;
}

const DISCORD_EPOCH = 1_420_070_400_000n;

/** The epoch ms a snowflake was made at. */
export function snowflakeTime(id: string): number {
  return Number((BigInt(id) >> 22n) + DISCORD_EPOCH);
}

/** The smallest snowflake made at `ms`. */
function snowflakeAt(ms: number): string {
  return String((BigInt(Math.max(0, ms)) - DISCORD_EPOCH) << 22n);
}

/** A message as Discord's REST API returns it (the fields the agent reads). */
const apiMessageSchema = z.object({
  id: z.string(),
  channel_id: z.string(),
  author: z.object({ id: z.string(), bot: z.boolean().optional() }),
  type: z.number().int(),
  content: z.string(),
  mentions: z.array(z.object({ id: z.string() })).default([]),
});

/** Channels quiet for longer than this are not read back (and their cursors are dropped). */
export const CATCH_UP_WITHIN_MS = 86_400_000;
/**
 * Read back from this long before the cursor too: messages of one channel can be accepted out of
 * order, so the cursor may have passed one still in hand when a server died. Repeats are harmless
 * (the agent answers an event id once).
 */
const OVERLAP_MS = 30_000;
const PAGE = 100;
/** At most this many messages per channel, however long the gap. */
const MAX_PER_CHANNEL = 500;

export interface CatchUpDeps {
  rest: REST;
  cursors: DiscordCursorStore;
  botId: string;
  /** Hands an event to the agent; false when it was not accepted. */
  deliver(event: ChannelEvent, message: InboundMessage): Promise<boolean>;
  logger: Logger;
  now?: () => number;
}

/** Reads every recently active channel from its cursor on, and hands on what the agent missed. */
export async function catchUpMissedMessages(deps: CatchUpDeps): Promise<number> {
  const { rest, cursors, botId, logger } = deps;
  const now = (deps.now ?? Date.now)();
  let handed = 0;
  for (const cursor of await cursors.recent(CATCH_UP_WITHIN_MS)) {
    let after = snowflakeAt(snowflakeTime(cursor.messageId) - OVERLAP_MS);
    try {
      for (let read = 0; read < MAX_PER_CHANNEL; ) {
        const query = new URLSearchParams({ after, limit: String(PAGE) });
        const raw = (await rest.get(Routes.channelMessages(cursor.channelId), { query })) as unknown[];
        const page = raw
          .map((item) => apiMessageSchema.safeParse(item))
          .flatMap((parsed) => {
            if (parsed.success) return [parsed.data];
            logger.warn(
              { issues: issuesText(parsed.error) },
              'discord catch-up: message of unexpected shape',
            );
            return [];
          })
          .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
        for (const api of page) {
          const message: InboundMessage = {
            id: api.id,
            channelId: api.channel_id,
            guildId: cursor.guildId,
            authorId: api.author.id,
            authorIsBot: api.author.bot ?? false,
            type: api.type,
            content: api.content,
            mentionsBot: api.mentions.some((m) => m.id === botId),
          };
          if (ignoreReason(message) !== undefined) continue;
          const event = messageEvent(message, botId);
          if (event.text.length > 0 && (await deps.deliver(event, message))) handed += 1;
        }
        read += page.length;
        const last = page.at(-1);
        if (page.length < PAGE || !last) break;
        after = last.id;
      }
    } catch (error) {
      logger.warn(
        { channelId: cursor.channelId, err: (error as Error).message },
        'discord catch-up: could not read a channel',
      );
    }
  }
  if (handed > 0)
    logger.info({ messages: handed, tookMs: Date.now() - now }, 'discord catch-up handed on messages');
  return handed;
}
