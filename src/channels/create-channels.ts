import type { Logger } from 'pino';
import type { ChannelAdapter } from './channel-adapter.js';
import type { ChannelsConfig } from './channels-config.js';
import { DiscordAdapter } from './discord/discord-adapter.js';
import { SlackAdapter } from './slack/slack-adapter.js';
import { TelegramAdapter } from './telegram/telegram-adapter.js';

/** The adapters of every configured, enabled platform; none is required. */
export function createChannelAdapters(config: ChannelsConfig, deps: { logger: Logger }): ChannelAdapter[] {
  const adapters: ChannelAdapter[] = [];
  const { telegram, discord, slack } = config;
  if (telegram?.enabled)
    adapters.push(
      new TelegramAdapter({ config: telegram, logger: deps.logger.child({ channel: 'telegram' }) }),
    );
  if (discord?.enabled)
    adapters.push(new DiscordAdapter({ config: discord, logger: deps.logger.child({ channel: 'discord' }) }));
  if (slack?.enabled)
    adapters.push(new SlackAdapter({ config: slack, logger: deps.logger.child({ channel: 'slack' }) }));
  return adapters;
}
