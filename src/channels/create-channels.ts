import type { Logger } from 'pino';
import type { ChannelAdapter, ChannelName } from './channel-adapter.js';
import type { ChannelsConfig } from './channels-config.js';
import { DiscordAdapter } from './discord/discord-adapter.js';
import { SlackAdapter } from './slack/slack-adapter.js';
import { TelegramAdapter } from './telegram/telegram-adapter.js';

/** Makes a new adapter for one platform: a leased channel needs a fresh one per lease term. */
export interface ChannelFactory {
  name: ChannelName;
  create(): ChannelAdapter;
}

/** A factory for every configured, enabled platform; none is required. */
export function channelFactories(config: ChannelsConfig, deps: { logger: Logger }): ChannelFactory[] {
  const factories: ChannelFactory[] = [];
  const { telegram, discord, slack } = config;
  if (telegram?.enabled) {
    const logger = deps.logger.child({ channel: 'telegram' });
    factories.push({ name: 'telegram', create: () => new TelegramAdapter({ config: telegram, logger }) });
  }
  if (discord?.enabled) {
    const logger = deps.logger.child({ channel: 'discord' });
    factories.push({ name: 'discord', create: () => new DiscordAdapter({ config: discord, logger }) });
  }
  if (slack?.enabled) {
    const logger = deps.logger.child({ channel: 'slack' });
    factories.push({ name: 'slack', create: () => new SlackAdapter({ config: slack, logger }) });
  }
  return factories;
}

/** The adapters of every configured, enabled platform. */
export function createChannelAdapters(config: ChannelsConfig, deps: { logger: Logger }): ChannelAdapter[] {
  return channelFactories(config, deps).map((factory) => factory.create());
}
