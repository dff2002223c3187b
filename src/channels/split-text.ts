const FENCE = /^\s*```(.*)$/;
const CLOSE = '\n```';

export interface SplitOptions {
  /** The length the platform counts (e.g. after escaping). Default: UTF-16 code units. */
  measure?: (text: string) => number;
}

/**
 * Splits a reply into parts of at most `limit` (as `measure` counts), breaking at a paragraph,
 * then a line, then a space, and never inside a surrogate pair. A code block cut in two is closed
 * at the end of one part and reopened (with its language) at the start of the next, so every part
 * renders on its own.
 */
export function splitText(text: string, limit: number, options: SplitOptions = {}): string[] {
  const measure = options.measure ?? ((s: string) => s.length);
  if (measure(text) <= limit) return text.length > 0 ? [text] : [];
  const parts: string[] = [];
  let rest = text;
  let reopen = '';
  while (rest.length > 0) {
    if (measure(reopen + rest) <= limit) {
      parts.push(reopen + rest);
      break;
    }
    // Room for the prefix that reopens a block, and for the fence that may close this part.
    const room = longestPrefix(rest, (s) => measure(reopen + s + CLOSE) <= limit);
    if (room < 1) throw new RangeError(`a part of ${limit} cannot hold any text after "${reopen}"`);
    const cut = breakPoint(rest, room);
    const chunk = rest.slice(0, cut.end);
    const open = openFence(reopen + chunk);
    parts.push(open === undefined ? reopen + chunk : `${reopen}${chunk.replace(/\n$/, '')}${CLOSE}`);
    reopen = open === undefined ? '' : `${open}\n`;
    rest = rest.slice(cut.next);
  }
  return parts;
}

/** The largest n such that fits(text.slice(0, n)), assuming fits is monotone. */
function longestPrefix(text: string, fits: (s: string) => boolean): number {
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(text.slice(0, mid))) low = mid;
    else high = mid - 1;
  }
  return low;
}

/** Where to end this part (`end`) and start the next (`next`, past the separator dropped). */
function breakPoint(text: string, room: number): { end: number; next: number } {
  const window = text.slice(0, room + 1);
  for (const separator of ['\n\n', '\n', ' ']) {
    const at = window.lastIndexOf(separator, room);
    if (at > room / 2 && at > 0) return { end: at, next: at + separator.length };
  }
  let end = room;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff && end > 1) end -= 1;
  return { end, next: end };
}

/** The opening fence line of a code block left open at the end of `text`, if any. */
function openFence(text: string): string | undefined {
  let open: string | undefined;
  for (const line of text.split('\n')) {
    const match = FENCE.exec(line);
    if (!match) continue;
    open = open === undefined ? `\`\`\`${(match[1] ?? '').trim()}` : undefined;
  }
  return open;
}
