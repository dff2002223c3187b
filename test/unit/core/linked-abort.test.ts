import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LinkedAbort } from '../../../src/core/linked-abort.js';

describe('LinkedAbort', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('aborts with a TimeoutError when its time runs out', () => {
    const linked = new LinkedAbort([], 100);
    vi.advanceTimersByTime(99);
    expect(linked.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(linked.signal.aborted).toBe(true);
    expect((linked.signal.reason as DOMException).name).toBe('TimeoutError');
  });

  it("follows whichever parent aborts first, with that parent's reason, and stops its timer", () => {
    const first = new AbortController();
    const second = new AbortController();
    const linked = new LinkedAbort([first.signal, undefined, second.signal], 1000);
    const reason = new Error('the caller left');
    second.abort(reason);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe(reason);
    expect(first.signal.aborted).toBe(false);
    // Its own timer was stopped with it.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts aborted under a parent that already is', () => {
    const parent = new AbortController();
    parent.abort('gone');
    const linked = new LinkedAbort([parent.signal], 1000);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe('gone');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('abort() aborts it with an AbortError and leaves the parent alone', () => {
    const parent = new AbortController();
    const linked = new LinkedAbort([parent.signal]);
    linked.abort();
    expect(linked.signal.aborted).toBe(true);
    expect((linked.signal.reason as DOMException).name).toBe('AbortError');
    expect(parent.signal.aborted).toBe(false);
  });

  it('restartTimer pushes the timeout back from now', () => {
    const linked = new LinkedAbort([], 100);
    vi.advanceTimersByTime(80);
    linked.restartTimer(100);
    vi.advanceTimersByTime(80);
    expect(linked.signal.aborted).toBe(false);
    vi.advanceTimersByTime(20);
    expect(linked.signal.aborted).toBe(true);
  });

  it('once disposed, neither its timer nor its parents abort it, and no parent holds a listener', () => {
    const parents = [new AbortController(), new AbortController()];
    const spies = parents.map((p) => ({
      added: vi.spyOn(p.signal, 'addEventListener'),
      removed: vi.spyOn(p.signal, 'removeEventListener'),
    }));
    const linked = new LinkedAbort(
      parents.map((p) => p.signal),
      100,
    );
    linked.dispose();
    for (const { added, removed } of spies)
      expect(removed).toHaveBeenCalledWith('abort', added.mock.calls[0]?.[1]);
    vi.advanceTimersByTime(1000);
    for (const parent of parents) parent.abort();
    expect(linked.signal.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
