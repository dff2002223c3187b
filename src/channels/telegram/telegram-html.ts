import { splitText } from '../split-text.js';

/** Telegram's limit for one message. */
export const TELEGRAM_MESSAGE_LIMIT = 4096;

/** The same fence rule as `splitText`, so both agree on where code blocks open and close. */
const FENCE = /^\s*```(.*)$/;
const INLINE_CODE = /`([^`\n]+)`/g;

/** The only three characters Telegram's HTML parse mode needs escaped outside attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Renders a reply for `parse_mode: 'HTML'`: everything escaped, fenced code blocks as
 * `<pre><code class="language-x">`, inline `code` as `<code>`. Nothing else of Markdown is
 * interpreted, so no text the model wrote can open a tag. Every tag opened is closed in the same
 * call, so each part of a split reply is valid on its own. A block left open at the end (a
 * truncated answer) is closed.
 */
export function renderTelegramHtml(text: string): string {
  const out: string[] = [];
  let block: { language: string; lines: string[] } | undefined;
  for (const line of text.split('\n')) {
    const fence = FENCE.exec(line);
    if (fence && block === undefined) block = { language: fenceLanguage(fence[1] ?? ''), lines: [] };
    else if (fence && block !== undefined) {
      out.push(preBlock(block.language, block.lines));
      block = undefined;
    } else if (block !== undefined) block.lines.push(line);
    else out.push(renderInline(line));
  }
  if (block !== undefined) out.push(preBlock(block.language, block.lines));
  return out.join('\n');
}

/**
 * Splits a reply into HTML messages that each fit Telegram's limit as rendered (escapes and tags
 * count), cutting the source text, never the HTML, so no part breaks a tag or an entity. Parts
 * with nothing visible (Telegram refuses empty messages) are left out.
 */
export function telegramMessageParts(text: string, limit = TELEGRAM_MESSAGE_LIMIT): string[] {
  const parts: string[] = [];
  for (const source of splitText(text, limit, { measure: (s) => renderTelegramHtml(s).length })) {
    const html = renderTelegramHtml(source);
    // splitText's search assumes the measure only grows with the text; rendering almost always
    // does, and where it does not, the part is split again with the excess taken off the limit.
    if (html.length > limit) {
      const smaller = limit - (html.length - limit) - 16;
      if (smaller < 64) throw new RangeError(`cannot fit a part of this reply in ${limit} characters`);
      parts.push(...telegramMessageParts(source, smaller));
    } else if (visibleText(html).trim().length > 0) parts.push(html);
  }
  return parts;
}

function renderInline(line: string): string {
  let out = '';
  let last = 0;
  for (const match of line.matchAll(INLINE_CODE)) {
    out += `${escapeHtml(line.slice(last, match.index))}<code>${escapeHtml(match[1] ?? '')}</code>`;
    last = match.index + match[0].length;
  }
  return out + escapeHtml(line.slice(last));
}

function preBlock(language: string, lines: readonly string[]): string {
  const body = escapeHtml(lines.join('\n'));
  return language === ''
    ? `<pre>${body}</pre>`
    : `<pre><code class="language-${language}">${body}</code></pre>`;
}

/**
 * The info string's first word, reduced to characters safe in an attribute. Characters are
 * dropped rather than the language refused, so a longer fence line never renders shorter.
 */
function fenceLanguage(info: string): string {
  return (info.trim().split(/\s+/)[0] ?? '').replace(/[^A-Za-z0-9_+#.-]/g, '').slice(0, 32);
}

function visibleText(html: string): string {
  return html.replace(/<[^>]*>/g, '').replace(/&(?:lt|gt|amp);/g, '_');
}
