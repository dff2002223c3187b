/** A slash command, parsed in core so every channel offers the same ones. */
export interface CommandContext {
  personId: string;
  channel: string;
  /** The sender's id on the channel (the account, with `channel`). */
  userId: string;
  /** Words after the command name. */
  args: string[];
}

export interface CommandResult {
  text: string;
  /** Start a fresh conversation context for this person. */
  resetContext?: boolean;
}

export interface Command {
  name: string;
  /** One line for `/help`. */
  summary: string;
  run(ctx: CommandContext): Promise<CommandResult> | CommandResult;
}

export interface ParsedCommand {
  name: string;
  args: string[];
}

/** `/name arg1 arg2`, also `/name@botname` as Telegram sends it in groups. */
export function parseCommand(text: string): ParsedCommand | undefined {
  const match = /^\/([a-z][a-z0-9_-]{0,31})(?:@\S+)?(?:\s+([\s\S]*))?$/i.exec(text.trim());
  if (!match) return undefined;
  const args = match[2]?.trim() ? match[2].trim().split(/\s+/) : [];
  return { name: (match[1] as string).toLowerCase(), args };
}
