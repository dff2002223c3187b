import { splitText } from '../split-text.js';

/**
 * Slack accepts 40,000 characters but asks for under 4,000 per message, and long ones render
 * collapsed; 3,900 leaves room and keeps each part readable.
 */
export const SLACK_PART_LIMIT = 3_900;

/**
 * Slack's three control characters. Escaping them keeps model output from becoming markup:
 * `<!channel>` would notify a whole channel, `<@U123>` would ping a person. Blockquotes (`&gt; `)
 * still render, as Slack's own clients send them this way.
 */
export function escapeSlackText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** What Slack's clients send: entities for the three characters above. */
export function unescapeSlackText(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The escaped parts of a reply, each within `limit` as Slack counts it (after escaping). */
export function slackParts(text: string, limit: number = SLACK_PART_LIMIT): string[] {
  return splitText(text, limit, { measure: (part) => escapeSlackText(part).length }).map(escapeSlackText);
}
