import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ApplicationIntegrationType,
  InteractionContextType,
  type RESTPutAPIApplicationCommandsJSONBody,
} from 'discord.js';
import type { PublishedCommand } from '../channel-adapter.js';

/** Discord's rule for chat-input command names (we publish ASCII names only). */
export const COMMAND_NAME = /^[a-z0-9_-]{1,32}$/;
const DESCRIPTION_MAX = 100;

/** The one option every command takes: the rest of the line, as `/name text` would carry it. */
export const TEXT_OPTION = 'text';

export interface CommandPayload {
  body: RESTPutAPIApplicationCommandsJSONBody;
  /** Commands left out, with why (Discord would refuse the whole PUT for one bad entry). */
  skipped: { name: string; reason: string }[];
}

/**
 * The slash commands to PUT. Every command gets one optional string option `text`, so commands
 * that take arguments (`/link CODE`) and those that do not share one shape, and the adapter turns
 * any of them back into `/name text` for the core's parser.
 */
export function commandPayload(commands: readonly PublishedCommand[]): CommandPayload {
  const body: RESTPutAPIApplicationCommandsJSONBody = [];
  const skipped: { name: string; reason: string }[] = [];
  const seen = new Set<string>();
  for (const command of commands) {
    if (!COMMAND_NAME.test(command.name)) {
      skipped.push({ name: command.name, reason: 'name must match ^[a-z0-9_-]{1,32}$' });
      continue;
    }
    if (seen.has(command.name)) {
      skipped.push({ name: command.name, reason: 'duplicate name' });
      continue;
    }
    seen.add(command.name);
    body.push({
      type: ApplicationCommandType.ChatInput,
      name: command.name,
      description: description(command.summary, command.name),
      // Usable in servers and in DMs with the bot.
      contexts: [InteractionContextType.Guild, InteractionContextType.BotDM],
      integration_types: [ApplicationIntegrationType.GuildInstall],
      options: [
        {
          type: ApplicationCommandOptionType.String,
          name: TEXT_OPTION,
          description: 'arguments, if the command takes any',
          required: false,
        },
      ],
    });
  }
  return { body, skipped };
}

function description(summary: string, name: string): string {
  const text = summary.replace(/\s+/g, ' ').trim() || name;
  return text.length <= DESCRIPTION_MAX ? text : `${text.slice(0, DESCRIPTION_MAX - 1)}…`;
}
