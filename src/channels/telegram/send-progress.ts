import { createHash } from 'node:crypto';
import type { ReplyAddress } from '../channel-adapter.js';

/**
 * Remembers how many parts of a split reply Telegram already accepted when a later part failed,
 * so the outbox's retry of the same reply resumes there instead of posting the first parts twice
 * (a 429 halfway through a long answer is common: Telegram allows about one message a second per
 * chat). In memory only, bounded, oldest forgotten first; a retry in another process resends.
 */
export class SendProgress {
  private readonly delivered = new Map<string, number>();

  constructor(private readonly capacity = 1_000) {}

  key(address: ReplyAddress, text: string): string {
    const digest = createHash('sha256').update(text).digest('base64url');
    return `${address.conversation}\u0000${address.thread ?? ''}\u0000${digest}`;
  }

  /** Parts already accepted for this reply. */
  get(key: string): number {
    return this.delivered.get(key) ?? 0;
  }

  record(key: string, parts: number): void {
    this.delivered.delete(key);
    if (parts === 0) return;
    this.delivered.set(key, parts);
    if (this.delivered.size > this.capacity) {
      const oldest = this.delivered.keys().next().value;
      if (oldest !== undefined) this.delivered.delete(oldest);
    }
  }

  done(key: string): void {
    this.delivered.delete(key);
  }
}
