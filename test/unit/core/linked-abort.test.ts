import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LinkedAbort } from '../../../src/core/linked-abort.js';

describe('LinkedAbort', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('aborts with a TimeoutError when its time runs out, and counts as its own abort', () => {
    const linked = new LinkedAbort(undefined, 100);
    vi.advanceTimersByTime(99);
    expect(linked.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(linked.signal.aborted).toBe(true);
    expect((linked.signal.reason as DOMException).name).toBe('TimeoutError');
    expect(linked.aborted).toBe(true);
  });

  it("follows its parent with the parent's reason, and that is not its own abort", () => {
    const parent = new AbortController();
    const linked = new LinkedAbort(parent.signal, 1000);
    const reason = new Error('the caller left');
    parent.abort(reason);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe(reason);
    expect(linked.aborted).toBe(false);
    // Its own timer was stopped with it.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts aborted under a parent that already is', () => {
    const parent = new AbortController();
    parent.abort('gone');
    const linked = new LinkedAbort(parent.signal, 1000);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe('gone');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('abort() aborts it and leaves the parent alone', () => {
    const parent = new AbortController();
    const linked = new LinkedAbort(parent.signal);
    linked.abort();
    expect(linked.signal.aborted).toBe(true);
    expect((linked.signal.reason as DOMException).name).toBe('AbortError');
    expect(linked.aborted).toBe(true);
    expect(parent.signal.aborted).toBe(false);
  });

  it('restartTimer pushes the timeout back from now', () => {
    const linked = new LinkedAbort(undefined, 100);
    vi.advanceTimersByTime(80);
    linked.restartTimer(100);
    vi.advanceTimersByTime(80);
    expect(linked.signal.aborted).toBe(false);
    vi.advanceTimersByTime(20);
    expect(linked.signal.aborted).toBe(true);
  });

  it('once disposed, neither its timer nor its parent aborts it, and the parent holds no listener', () => {
    const parent = new AbortController();
    const added = vi.spyOn(parent.signal, 'addEventListener');
    const removed = vi.spyOn(parent.signal, 'removeEventListener');
    const linked = new LinkedAbort(parent.signal, 100);
    linked.dispose();
    expect(removed).toHaveBeenCalledWith('abort', added.mock.calls[0]?.[1]);
    vi.advanceTimersByTime(1000);
    parent.abort();
    expect(linked.signal.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
