import type { Redis } from 'ioredis';
import { type DiscordCursorStore, snowflakeTime } from './discord-catch-up.js';

// KEYS[1] the cursors hash. ARGV: channel id, message id, guild id ('' for a DM).
// Moves a channel's cursor only forward: snowflakes compare by length, then digit by digit.
const ADVANCE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local id = string.match(current, '^[^|]*')
  if #id > #ARGV[2] or (#id == #ARGV[2] and id >= ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
`;

/** Discord cursors in one Redis hash (channel id -> `messageId|guildId`), shared by the servers. */
export class RedisDiscordCursorStore implements DiscordCursorStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    private readonly now: () => number = Date.now,
    /** While false (Redis away), cursors are not moved rather than waiting on a dead connection. */
    private readonly reachable: () => boolean = () => true,
  ) {
    this.key = `${keyPrefix}:discord:cursors`;
  }

  async advance(channelId: string, messageId: string, guildId: string | null): Promise<void> {
    // The cursor stays behind: the read-back after the outage sees these messages again, and
    // the agent knows them answered (their events replay from the write-ahead log first).
    if (!this.reachable()) return;
    await this.redis.eval(ADVANCE, 1, this.key, channelId, messageId, guildId ?? '');
  }

  async recent(
    withinMs: number,
  ): Promise<{ channelId: string; messageId: string; guildId: string | null }[]> {
    const all = await this.redis.hgetall(this.key);
    const cutoff = this.now() - withinMs;
    const recent: { channelId: string; messageId: string; guildId: string | null }[] = [];
    const stale: string[] = [];
    for (const [channelId, value] of Object.entries(all)) {
      const [messageId = '', guildId = ''] = value.split('|');
      if (!/^\d{1,20}$/.test(messageId) || snowflakeTime(messageId) < cutoff) stale.push(channelId);
      else recent.push({ channelId, messageId, guildId: guildId || null });
    }
    if (stale.length > 0) await this.redis.hdel(this.key, ...stale);
    return recent;
  }
}
