import type { webApi } from '@slack/bolt';
import { z } from 'zod';
import type { ReplyAddress } from '../channel-adapter.js';

/**
 * Every reply part the agent posts carries Slack message metadata naming its outbox id and part
 * number. A delivery re-run after a crash reads the conversation back and posts only the parts
 * not there yet, so a reply whose first attempt landed is not posted twice.
 */
export const REPLY_EVENT_TYPE = 'agent_reply';

/** How far back a re-run looks: the newest messages of the conversation or thread. */
const LOOK_BACK = 200;

export function replyMetadata(replyId: string, part: number) {
  return { event_type: REPLY_EVENT_TYPE, event_payload: { reply_id: replyId, part } };
}

const historySchema = z.object({
  messages: z
    .array(
      z.object({
        metadata: z
          .object({
            event_type: z.string(),
            event_payload: z.object({ reply_id: z.string().optional(), part: z.number().optional() }).loose(),
          })
          .optional(),
      }),
    )
    .default([]),
});

/** The part numbers of `replyId` already posted in the address's conversation (or thread). */
export async function postedParts(
  client: webApi.WebClient,
  address: ReplyAddress,
  replyId: string,
): Promise<Set<number>> {
  const common = { channel: address.conversation, include_all_metadata: true, limit: LOOK_BACK };
  const raw =
    address.thread === undefined
      ? await client.conversations.history(common)
      : await client.conversations.replies({ ...common, ts: address.thread });
  const parsed = historySchema.parse(raw);
  const parts = new Set<number>();
  for (const message of parsed.messages) {
    const meta = message.metadata;
    if (meta?.event_type !== REPLY_EVENT_TYPE || meta.event_payload.reply_id !== replyId) continue;
    if (typeof meta.event_payload.part === 'number') parts.add(meta.event_payload.part);
  }
  return parts;
}
