import { describe, expect, it } from 'vitest';
import { oneAtATime } from '../../../src/core/one-at-a-time.js';

describe('oneAtATime', () => {
  it('starts each call once the one before it has settled, failed ones included', async () => {
    const events: string[] = [];
    let release!: () => void;
    const first = new Promise<void>((resolve) => {
      release = resolve;
    });
    const task = oneAtATime(async (name: string) => {
      events.push(`start ${name}`);
      if (name === 'a') await first;
      if (name === 'b') throw new Error('b failed');
      events.push(`end ${name}`);
      return name;
    });
    const a = task('a');
    const b = task('b');
    const c = task('c');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(events).toEqual(['start a']);
    release();
    await expect(a).resolves.toBe('a');
    await expect(b).rejects.toThrow('b failed');
    await expect(c).resolves.toBe('c');
    expect(events).toEqual(['start a', 'end a', 'start b', 'start c', 'end c']);
  });
});
