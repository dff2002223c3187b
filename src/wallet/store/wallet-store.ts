import { type IntentStatus, SPENDING_STATUSES, type TransferIntent } from '../transfer-intent.js';

/** A daily cap to check, atomically with the step that makes an intent count against it. */
export interface CapCheck {
  token: string;
  /** The most that may be spending in the window, this intent included. */
  perDay: bigint;
  /** For autonomous transfers: the most autonomous ones may be spending in the window. */
  autonomousPerDay?: bigint;
  windowMs: number;
}

export type AuthorizeResult =
  | { ok: true; intent: TransferIntent }
  | { ok: false; reason: 'not_found' | 'wrong_status' | 'approval_expired'; intent?: TransferIntent }
  | { ok: false; reason: 'over_daily_cap'; spent: bigint }
  | { ok: false; reason: 'over_autonomous_daily_cap'; spent: bigint };

/**
 * Where transfer intents live: Redis when configured (shared by both servers), else the local
 * append-only log. Every method either completes or throws; the wallet treats a throw as "refuse".
 */
export interface WalletStore {
  readonly backend: 'log' | 'redis';
  open(): Promise<void>;
  close(): Promise<void>;
  create(intent: TransferIntent): Promise<void>;
  get(id: string): Promise<TransferIntent | undefined>;
  /**
   * Moves an intent from one of `from` to `patch.status`, atomically. Undefined when its status
   * was no longer one of `from` (someone else moved it first) or it does not exist.
   */
  transition(
    id: string,
    from: readonly IntentStatus[],
    patch: Partial<TransferIntent> & { status: IntentStatus },
  ): Promise<TransferIntent | undefined>;
  /**
   * Moves an intent from one of `from` to `approved` only if the daily caps still hold with it
   * counted, in one atomic step across servers: two approvals at once can never both squeeze under a cap.
   */
  authorize(
    id: string,
    from: readonly IntentStatus[],
    caps: CapCheck,
    patch: Partial<TransferIntent>,
    now: number,
  ): Promise<AuthorizeResult>;
  /** Newest first. */
  recent(limit: number): Promise<TransferIntent[]>;
  /** Intents in any of `statuses`, oldest first. */
  withStatus(statuses: ReadonlySet<IntentStatus>): Promise<TransferIntent[]>;
}

/** Sums what counts against the caps in the window: `[all, autonomous]`. Shared by both stores. */
export function spentInWindow(
  intents: Iterable<TransferIntent>,
  token: string,
  since: number,
  spending: ReadonlySet<IntentStatus>,
): [bigint, bigint] {
  let all = 0n;
  let autonomous = 0n;
  for (const intent of intents) {
    if (intent.token !== token || !spending.has(intent.status)) continue;
    if ((intent.authorizedAt ?? 0) < since) continue;
    const amount = BigInt(intent.amount);
    all += amount;
    if (intent.autonomous) autonomous += amount;
  }
  return [all, autonomous];
}

/**
 * The whole authorisation decision, made by both stores on what they read inside their atomic
 * step: the status compare-and-set, the approval's expiry, then the caps with this intent counted.
 * `window` is every intent that may count against the caps (more is harmless: it is filtered).
 */
export function decideAuthorization(
  current: TransferIntent | undefined,
  from: readonly IntentStatus[],
  caps: CapCheck,
  patch: Partial<TransferIntent>,
  now: number,
  window: () => Iterable<TransferIntent> | Promise<Iterable<TransferIntent>>,
): Promise<AuthorizeResult> | AuthorizeResult {
  if (!current) return { ok: false, reason: 'not_found' };
  if (!from.includes(current.status)) return { ok: false, reason: 'wrong_status', intent: current };
  if (
    current.status === 'pending_approval' &&
    current.approvalExpiresAt !== undefined &&
    now > current.approvalExpiresAt
  ) {
    return { ok: false, reason: 'approval_expired', intent: current };
  }
  return Promise.resolve(window()).then((intents): AuthorizeResult => {
    const refused = checkCaps(intents, current, caps, patch.autonomous === true, SPENDING_STATUSES, now);
    if (refused) return refused;
    return {
      ok: true,
      intent: { ...current, ...patch, id: current.id, status: 'approved', authorizedAt: now, updatedAt: now },
    };
  });
}

/** The cap decision both stores make on the intents they read. */
function checkCaps(
  intents: Iterable<TransferIntent>,
  intent: TransferIntent,
  caps: CapCheck,
  autonomous: boolean,
  spending: ReadonlySet<IntentStatus>,
  now: number,
): AuthorizeResult | undefined {
  const [all, auto] = spentInWindow(intents, caps.token, now - caps.windowMs, spending);
  const amount = BigInt(intent.amount);
  if (all + amount > caps.perDay) return { ok: false, reason: 'over_daily_cap', spent: all };
  if (autonomous && caps.autonomousPerDay !== undefined && auto + amount > caps.autonomousPerDay) {
    return { ok: false, reason: 'over_autonomous_daily_cap', spent: auto };
  }
  return undefined;
}
