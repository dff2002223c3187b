import { describe, expect, it } from 'vitest';
import { splitText } from '../../../src/channels/split-text.js';

describe('splitText', () => {
  it('leaves a short text whole, and an empty one empty', () => {
    expect(splitText('hello', 10)).toEqual(['hello']);
    expect(splitText('', 10)).toEqual([]);
  });

  it('breaks at a paragraph, then a line, then a space, and loses no words', () => {
    const text = `${'a'.repeat(30)}\n\n${'b'.repeat(30)}\n${'c'.repeat(10)} ${'d'.repeat(10)}`;
    const parts = splitText(text, 40);
    expect(parts).toEqual(['a'.repeat(30), 'b'.repeat(30), `${'c'.repeat(10)} ${'d'.repeat(10)}`]);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(40);
  });

  it('cuts a word longer than the limit, never inside a surrogate pair', () => {
    const text = '😀'.repeat(30); // 60 code units
    const parts = splitText(text, 25);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(25);
      expect(part).not.toMatch(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
    }
    expect(parts.join('')).toBe(text);
  });

  it('closes a code block cut in two and reopens it with its language', () => {
    const code = Array.from({ length: 40 }, (_, i) => `line ${i};`).join('\n');
    const text = `Here:\n\`\`\`ts\n${code}\n\`\`\`\nDone.`;
    const parts = splitText(text, 120);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(120);
      // Every part has balanced fences, so it renders on its own.
      expect((part.match(/^```/gm) ?? []).length % 2).toBe(0);
    }
    expect(parts[1]?.startsWith('```ts\n')).toBe(true);
    const body = parts.join('\n').replace(/\n```\n```ts\n/g, '\n');
    for (let i = 0; i < 40; i += 1) expect(body).toContain(`line ${i};`);
    expect(parts.at(-1)?.endsWith('Done.')).toBe(true);
  });

  it('counts with the platform measure (e.g. escaped length)', () => {
    const escapedLength = (s: string) => s.replace(/&/g, '&amp;').length;
    const parts = splitText('&'.repeat(50), 50, { measure: escapedLength });
    for (const part of parts) expect(escapedLength(part)).toBeLessThanOrEqual(50);
    expect(parts.join('')).toBe('&'.repeat(50));
  });
});
