/**
 * A transfer from the moment it is asked for until it has landed or certainly failed. The status
 * only moves forward, by compare-and-set in the store, so two servers (or a server and its own
 * recovery job) can never both act on the same step.
 *
 *   proposed ─────────cap check──────────┐
 *   pending_approval ──approve──▶ approved ──sign+persist──▶ signed ──broadcast──▶ sent
 *          │                         ▲                                             │
 *          ├──reject──▶ rejected     └── (owner's /wallet send, or an autonomous    ├──▶ confirmed ──▶ finalized
 *          └──ttl────▶ expired           proposal inside the sub-limit)             └──▶ failed (expired unlanded, or
 *                                                                                        landed with an error)
 */
export type IntentStatus =
  /** Judged executable; counts against nothing until the atomic cap check authorises it. */
  | 'proposed'
  | 'pending_approval'
  | 'approved'
  | 'signed'
  | 'sent'
  | 'confirmed'
  | 'finalized'
  | 'failed'
  | 'rejected'
  | 'expired';

/** Statuses whose amount counts against the caps: the money has left or still may. */
export const SPENDING_STATUSES: ReadonlySet<IntentStatus> = new Set([
  'approved',
  'signed',
  'sent',
  'confirmed',
  'finalized',
]);

/** Statuses the reconciliation job still has work for. */
export const UNFINISHED_STATUSES: ReadonlySet<IntentStatus> = new Set([
  'approved',
  'signed',
  'sent',
  'confirmed',
]);

export interface Requester {
  personId: string;
  channel: string;
  userId: string;
}

export interface SignedTransfer {
  /** Base58 signature: the transaction's id on the chain. */
  signature: string;
  /** The exact signed bytes (base64): rebroadcast as they are, never re-signed while they can land. */
  transaction: string;
  /** After this block height the bytes can never land. */
  lastValidBlockHeight: number;
  signedAt: number;
}

export interface TransferIntent {
  /** Short, for `/wallet approve <id>`. */
  id: string;
  token: string;
  /** Absent for SOL. */
  mint?: string;
  decimals: number;
  /** Base units, as a decimal string (JSON has no bigint). */
  amount: string;
  recipient: string;
  requester: Requester;
  /** An owner's command, or the model's `propose_transfer`. */
  origin: 'command' | 'model';
  /** Why the model proposed it, as it said (shown to the approving owner). */
  memo?: string;
  status: IntentStatus;
  createdAt: number;
  updatedAt: number;
  /** Pending approvals can no longer be approved after this. */
  approvalExpiresAt?: number;
  /** When it started counting against the caps. */
  authorizedAt?: number;
  authorizedBy?: 'owner' | 'autonomous';
  approver?: string;
  autonomous?: boolean;
  signed?: SignedTransfer;
  /** The slot it landed in. */
  slot?: number;
  error?: string;
}

export function intentAmount(intent: TransferIntent): bigint {
  return BigInt(intent.amount);
}
