/**
 * A webhook's shared secret (Slack's signing secret, Telegram's `secret_token`) across a rotation.
 * The platform switches to the new value only when its owner re-registers it, which happens
 * around, not exactly at, the moment the agent reads the new value; so the value it replaced stays
 * accepted for `graceMs` after the change, and no request in between is refused.
 */
export class RotatingSecret {
  private currentValue: string;
  private previous: { value: string; until: number } | undefined;

  constructor(
    value: string,
    private readonly graceMs: number = DEFAULT_SECRET_GRACE_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.currentValue = value;
  }

  get current(): string {
    return this.currentValue;
  }

  /** Switches to `value`; the old one stays accepted for the grace period. No-op if unchanged. */
  set(value: string): void {
    if (value === this.currentValue) return;
    this.previous = { value: this.currentValue, until: this.now() + this.graceMs };
    this.currentValue = value;
  }

  /** The values a request may be verified with now: the current one first. */
  accepted(): string[] {
    if (this.previous && this.now() < this.previous.until) return [this.currentValue, this.previous.value];
    this.previous = undefined;
    return [this.currentValue];
  }
}

/** How long a rotated-out webhook secret is still accepted: time to re-register the new one. */
export const DEFAULT_SECRET_GRACE_MS = 15 * 60_000;
