import type { PublishedCommand } from '../channel-adapter.js';

export interface BotCommand {
  command: string;
  description: string;
}

const NAME = /^[a-z0-9_]{1,32}$/;
/** Telegram accepts at most this many commands per scope. */
const MAX_COMMANDS = 100;

/**
 * The agent's commands as `setMyCommands` accepts them: names of 1-32 of a-z, 0-9 and "_"
 * (others are left out and returned, since Telegram refuses the whole list for one bad name),
 * descriptions of 1-256 characters.
 */
export function toBotCommands(commands: readonly PublishedCommand[]): {
  commands: BotCommand[];
  skipped: string[];
} {
  const out: BotCommand[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const { name, summary } of commands) {
    const command = name.replace(/^\//, '').toLowerCase();
    if (!NAME.test(command) || seen.has(command) || out.length >= MAX_COMMANDS) {
      skipped.push(name);
      continue;
    }
    seen.add(command);
    const oneLine = summary.replace(/\s+/g, ' ').trim() || command;
    const description = oneLine.length > 256 ? `${oneLine.slice(0, 255)}…` : oneLine;
    out.push({ command, description });
  }
  return { commands: out, skipped };
}
