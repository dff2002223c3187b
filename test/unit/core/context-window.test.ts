import { describe, expect, it } from 'vitest';
import { buildContext, estimateTokens } from '../../../src/core/context-window.js';
import type { Turn } from '../../../src/core/memory/memory-store.js';

const turn = (n: number, size = 10): Turn => ({
  id: String(n),
  personId: 'p',
  channel: 'http',
  user: `u${n}`.padEnd(size, '.'),
  assistant: `a${n}`.padEnd(size, '.'),
  at: n,
});

describe('buildContext', () => {
  it('sends the newest turns, oldest first, then the new message', () => {
    const messages = buildContext([turn(1), turn(2), turn(3)], 'now', 'sys', {
      maxTurns: 2,
      maxTokens: 10_000,
    });
    expect(messages.map((m) => m.content.slice(0, 2))).toEqual(['u2', 'a2', 'u3', 'a3', 'no']);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
  });

  it('drops the oldest turns that do not fit the token budget', () => {
    const turns = [turn(1, 400), turn(2, 400), turn(3, 400)];
    const perTurn = 2 * estimateTokens('x'.repeat(400));
    const budget = estimateTokens('sys') + estimateTokens('now') + 2 * perTurn;
    const messages = buildContext(turns, 'now', 'sys', { maxTurns: 10, maxTokens: budget });
    expect(messages).toHaveLength(5);
    expect(messages[0]?.content.startsWith('u2')).toBe(true);
  });

  it('sends only the new message when even one turn does not fit', () => {
    const messages = buildContext([turn(1, 4000)], 'now', 'sys', { maxTurns: 10, maxTokens: 200 });
    expect(messages).toEqual([{ role: 'user', content: 'now' }]);
  });
});
