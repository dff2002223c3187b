import { createHash } from 'node:crypto';
import type { RESTPostAPIChannelMessageJSONBody } from 'discord.js';
import type { ReplyAddress } from '../channel-adapter.js';
import { splitText } from '../split-text.js';

/** Discord's limit on a message's content. */
export const MESSAGE_LIMIT = 2000;

/**
 * The messages that carry one reply. The first answers `address.thread` as a Discord reply
 * (`fail_if_not_exists: false`, so a deleted original does not lose the answer); the rest follow
 * as plain messages.
 *
 * Each part has a nonce derived from the address, the whole reply and its index, sent with
 * `enforce_nonce`: Discord then returns the message it already created for that nonce (for a few
 * minutes) instead of posting it twice. So when the outbox retries a reply whose first parts went
 * through, or a redundant agent sends the same reply, those parts are not repeated.
 */
export function replyMessages(address: ReplyAddress, text: string): RESTPostAPIChannelMessageJSONBody[] {
  const parts = splitText(text, MESSAGE_LIMIT);
  const replyHash = createHash('sha256')
    .update(`${address.conversation}\n${address.thread ?? ''}\n${text}`)
    .digest('base64url');
  return parts.map((content, index) => ({
    content,
    nonce: nonceFor(replyHash, index),
    enforce_nonce: true,
    // Model output must not ping @everyone, roles or arbitrary users; the reply pings its author.
    allowed_mentions: { parse: [], replied_user: true },
    ...(index === 0 && address.thread !== undefined
      ? { message_reference: { message_id: address.thread, fail_if_not_exists: false } }
      : {}),
  }));
}

/** Discord caps nonces at 25 characters. */
function nonceFor(replyHash: string, index: number): string {
  const suffix = `.${index}`;
  return `${replyHash.slice(0, 25 - suffix.length)}${suffix}`;
}
