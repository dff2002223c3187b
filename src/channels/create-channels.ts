import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ChannelAdapter, ChannelName } from './channel-adapter.js';
import type { ChannelsConfig } from './channels-config.js';
import { DiscordAdapter } from './discord/discord-adapter.js';
import { RedisDiscordCursorStore } from './discord/redis-cursor-store.js';
import { SlackAdapter } from './slack/slack-adapter.js';
import { TelegramAdapter } from './telegram/telegram-adapter.js';

/** Makes a new adapter for one platform: a leased channel needs a fresh one per lease term. */
export interface ChannelFactory {
  name: ChannelName;
  create(): ChannelAdapter;
}

export interface ChannelDeps {
  logger: Logger;
  /** With Redis: what the platforms need to share between servers (Discord's read-back cursors). */
  redis?: { client: Redis; keyPrefix: string; reachable?: () => boolean };
}

/**
 * A factory for every configured, enabled platform; none is required. `current` is read on each
 * `create`, so an adapter made after a secret rotation starts with the rotated secrets.
 */
export function channelFactories(
  config: ChannelsConfig,
  deps: ChannelDeps,
  current: () => ChannelsConfig = () => config,
): ChannelFactory[] {
  const factories: ChannelFactory[] = [];
  const { telegram, discord, slack } = config;
  if (telegram?.enabled) {
    const logger = deps.logger.child({ channel: 'telegram' });
    factories.push({
      name: 'telegram',
      create: () => new TelegramAdapter({ config: current().telegram ?? telegram, logger }),
    });
  }
  if (discord?.enabled) {
    const logger = deps.logger.child({ channel: 'discord' });
    const cursors =
      deps.redis &&
      new RedisDiscordCursorStore(deps.redis.client, deps.redis.keyPrefix, Date.now, deps.redis.reachable);
    factories.push({
      name: 'discord',
      create: () =>
        new DiscordAdapter({ config: current().discord ?? discord, logger, ...(cursors ? { cursors } : {}) }),
    });
  }
  if (slack?.enabled) {
    const logger = deps.logger.child({ channel: 'slack' });
    factories.push({
      name: 'slack',
      create: () => new SlackAdapter({ config: current().slack ?? slack, logger }),
    });
  }
  return factories;
}

/** The adapters of every configured, enabled platform. */
export function createChannelAdapters(config: ChannelsConfig, deps: ChannelDeps): ChannelAdapter[] {
  return channelFactories(config, deps).map((factory) => factory.create());
}
