/**
 * The bot token every Bot API call is made with, switchable while the adapter runs. grammy fixes
 * the token at construction and puts it in each request's URL; its `buildUrl` client option reads
 * it from here at every call instead, so one `Bot` keeps its polling state (the offset of the
 * last update tried, the bot's identity) across a rotation, and nothing has to be rebuilt.
 */
export class BotToken {
  private value: string;
  private readonly used: string[];

  constructor(value: string) {
    this.value = value;
    this.used = [value];
  }

  get current(): string {
    return this.value;
  }

  /** Every token this process used: an error of a call made before a rotation may still carry one. */
  get all(): readonly string[] {
    return this.used;
  }

  /**
   * Switches to `value`; false when it is the current one. A token of another bot is refused:
   * the bot's identity (its username, for mentions) and its webhook would be wrong until a restart.
   */
  set(value: string): boolean {
    if (value === this.value) return false;
    if (botId(value) !== botId(this.value))
      throw new RangeError(
        `channels.telegram.botToken belongs to bot ${botId(value)}, not ${botId(this.value)}; another bot needs a restart`,
      );
    this.value = value;
    if (!this.used.includes(value)) this.used.push(value);
    return true;
  }

  /** For grammy's `client.buildUrl`: its default URL, with the token of the moment. */
  readonly buildUrl = (root: string, _token: string, method: string, env: 'prod' | 'test'): string =>
    `${root}/bot${this.value}/${env === 'test' ? 'test/' : ''}${method}`;
}

/** The bot's user id, the part of a token before the colon. */
function botId(token: string): string {
  return token.split(':')[0] ?? '';
}
