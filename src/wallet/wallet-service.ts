import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { formatAmount } from './amount.js';
import { clip } from './clip.js';
import { type SignatureState, type SolanaRpc, TransactionRejected } from './rpc/solana-rpc.js';
import type { WalletStore } from './store/wallet-store.js';
import { signTransfer } from './transfer-builder.js';
import {
  type IntentStatus,
  type Requester,
  type TransferIntent,
  UNFINISHED_STATUSES,
} from './transfer-intent.js';
import { type TokenRule, type Verdict, type WalletPolicy, WalletRefusal } from './wallet-policy.js';
import type { WalletSigner } from './wallet-signer.js';

const DAY_MS = 86_400_000;
/** While a transfer waits to land, its same bytes are sent again this often. */
const REBROADCAST_EVERY_MS = 2000;
/** A proposal that never got past its policy check (a crash in between) is closed after this. */
const STALE_PROPOSAL_MS = 60_000;

export interface TransferRequestInput {
  requester: Requester;
  requesterIsOwner: boolean;
  origin: 'command' | 'model';
  token: string;
  amount: string;
  recipient: string;
  memo?: string;
}

export interface WalletServiceOptions {
  address: string;
  signer: WalletSigner;
  rpc: SolanaRpc;
  store: WalletStore;
  policy: WalletPolicy;
  /** Proves the RPC serves the configured cluster; every action waits for it (and refuses if it fails). */
  verify?: () => Promise<void>;
  approvalTtlMs: number;
  confirmPollMs: number;
  confirmWaitMs: number;
  logger: Logger;
  /** Tells the person who asked how their transfer ended (through their chat). */
  notify?: (requester: Requester, id: string, text: string) => Promise<void>;
  /** Counts each reported outcome (confirmed, finalized, failed): the wallet's metrics. */
  onOutcome?: (status: TransferIntent['status'], intentId: string) => void;
  now?: () => number;
}

/**
 * Every wallet action: reading balances, judging and authorising transfers, and driving each one
 * from signed bytes to a confirmed (or certainly failed) transfer. The rules it never breaks:
 * bytes are persisted before they are broadcast; persisted bytes are only ever sent again, never
 * replaced, until the chain says they can no longer land; and anything it cannot read or write
 * makes it refuse rather than guess.
 */
export class WalletService {
  private readonly now: () => number;
  private readonly trackers = new Map<string, Promise<TransferIntent>>();
  private stopped = false;

  constructor(private readonly options: WalletServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  get address(): string {
    return this.options.address;
  }

  get policy(): WalletPolicy {
    return this.options.policy;
  }

  async balances(): Promise<{ token: TokenRule; units: bigint }[]> {
    await this.verified();
    const { rpc, policy, address } = this.options;
    return Promise.all(
      policy.tokenList().map(async (token) => ({
        token,
        units: token.mint ? await rpc.tokenBalance(address, token.mint) : await rpc.balance(address),
      })),
    );
  }

  /** Judges a transfer and executes it, queues it for an owner's approval, or throws `WalletRefusal`. */
  async request(input: TransferRequestInput): Promise<TransferIntent> {
    await this.verified();
    const verdict = this.options.policy.judge({
      token: input.token,
      amount: input.amount,
      recipient: input.recipient,
      origin: input.origin,
      requesterIsOwner: input.requesterIsOwner,
    });
    const now = this.now();
    const intent: TransferIntent = {
      id: newIntentId(),
      token: verdict.token.symbol,
      ...(verdict.token.mint ? { mint: verdict.token.mint } : {}),
      decimals: verdict.token.decimals,
      amount: verdict.units.toString(),
      recipient: input.recipient,
      requester: input.requester,
      origin: input.origin,
      ...(input.memo ? { memo: input.memo.slice(0, 200) } : {}),
      status: verdict.kind === 'execute' ? 'proposed' : 'pending_approval',
      createdAt: now,
      updatedAt: now,
      ...(verdict.kind === 'needs_approval' ? { approvalExpiresAt: now + this.options.approvalTtlMs } : {}),
    };
    await this.failClosed(() => this.options.store.create(intent));
    if (verdict.kind === 'needs_approval') return intent;
    return this.authorizeAndExecute(intent, verdict, ['proposed'], {
      authorizedBy: verdict.autonomous ? 'autonomous' : 'owner',
      autonomous: verdict.autonomous,
    });
  }

  /** An owner's `/wallet approve`: works once, only before the approval expires, and within the caps of now. */
  async approve(id: string, approver: string, approverIsOwner: boolean): Promise<TransferIntent> {
    if (!approverIsOwner)
      throw new WalletRefusal('not_owner', 'only the wallet owners may approve transfers');
    await this.verified();
    const intent = await this.failClosed(() => this.options.store.get(id));
    if (!intent) throw new WalletRefusal('not_pending', `there is no transfer ${clip(id, 30)}`);
    if (intent.status !== 'pending_approval') {
      throw new WalletRefusal(
        'not_pending',
        `transfer ${id} is ${describeStatus(intent.status)}, not waiting for approval`,
      );
    }
    if (intent.approvalExpiresAt !== undefined && this.now() > intent.approvalExpiresAt) {
      await this.options.store.transition(id, ['pending_approval'], {
        status: 'expired',
        updatedAt: this.now(),
      });
      throw new WalletRefusal(
        'approval_expired',
        `transfer ${id} expired before it was approved; nothing was sent`,
      );
    }
    // The rules as they are now (caps or the allowlist may have changed since it was proposed).
    const verdict = this.options.policy.judge({
      token: intent.token,
      amount: formatAmount(BigInt(intent.amount), intent.decimals),
      recipient: intent.recipient,
      origin: 'command',
      requesterIsOwner: true,
    });
    return this.authorizeAndExecute(intent, verdict, ['pending_approval'], {
      authorizedBy: 'owner',
      autonomous: false,
      approver,
    });
  }

  async reject(id: string, ownerIsAsking: boolean): Promise<TransferIntent> {
    if (!ownerIsAsking) throw new WalletRefusal('not_owner', 'only the wallet owners may reject transfers');
    const rejected = await this.failClosed(() =>
      this.options.store.transition(id, ['pending_approval'], { status: 'rejected', updatedAt: this.now() }),
    );
    if (!rejected)
      throw new WalletRefusal('not_pending', `transfer ${clip(id, 30)} is not waiting for approval`);
    return rejected;
  }

  async pending(): Promise<TransferIntent[]> {
    const now = this.now();
    const waiting = await this.failClosed(() => this.options.store.withStatus(new Set(['pending_approval'])));
    return waiting.filter((i) => (i.approvalExpiresAt ?? Number.POSITIVE_INFINITY) >= now);
  }

  history(limit: number): Promise<TransferIntent[]> {
    return this.failClosed(() => this.options.store.recent(limit));
  }

  /**
   * The reconciliation job and start-up: every transfer that is not finished is driven on. Bytes
   * that were persisted are looked up on the chain, and sent again while they can still land.
   */
  async reconcile(): Promise<{ checked: number; resumed: number }> {
    await this.verified();
    const { store } = this.options;
    const open = await store.withStatus(
      new Set<IntentStatus>([...UNFINISHED_STATUSES, 'proposed', 'pending_approval']),
    );
    let resumed = 0;
    for (const intent of open) {
      if (this.stopped) break;
      if (intent.status === 'pending_approval') {
        if ((intent.approvalExpiresAt ?? Number.POSITIVE_INFINITY) < this.now()) {
          await store.transition(intent.id, ['pending_approval'], {
            status: 'expired',
            updatedAt: this.now(),
          });
        }
        continue;
      }
      if (intent.status === 'proposed') {
        if (intent.createdAt < this.now() - STALE_PROPOSAL_MS) {
          await store.transition(intent.id, ['proposed'], {
            status: 'failed',
            error: 'interrupted before its policy check; nothing was signed',
            updatedAt: this.now(),
          });
        }
        continue;
      }
      // Tracked in the background; a tracker this process already runs is not started twice.
      void this.track(intent);
      resumed += 1;
    }
    return { checked: open.length, resumed };
  }

  /** Stops tracking; what is unfinished is in the store for the next start or the other server. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.trackers.values()]);
  }

  private async authorizeAndExecute(
    intent: TransferIntent,
    verdict: Verdict,
    from: IntentStatus[],
    patch: Partial<TransferIntent>,
  ): Promise<TransferIntent> {
    const limits = verdict.token.limits;
    if (!limits) throw new WalletRefusal('no_limits', `${verdict.token.symbol} has no limits set`);
    const result = await this.failClosed(() =>
      this.options.store.authorize(
        intent.id,
        from,
        {
          token: verdict.token.symbol,
          perDay: limits.perDay,
          windowMs: DAY_MS,
          ...(patch.autonomous ? { autonomousPerDay: limits.autonomousPerDay } : {}),
        },
        patch,
        this.now(),
      ),
    );
    if (!result.ok) {
      const token = verdict.token;
      if (from.includes('proposed')) {
        await this.options.store
          .transition(intent.id, ['proposed'], {
            status: 'failed',
            error: result.reason,
            updatedAt: this.now(),
          })
          .catch(() => undefined);
      }
      switch (result.reason) {
        case 'over_daily_cap':
          throw new WalletRefusal(
            'over_daily_cap',
            `that would pass the 24-hour cap of ${formatAmount(limits.perDay, token.decimals)} ${token.symbol} ` +
              `(${formatAmount(result.spent, token.decimals)} already sent or on its way)`,
          );
        case 'over_autonomous_daily_cap':
          throw new WalletRefusal(
            'over_autonomous_daily_cap',
            `that would pass the 24-hour autonomous cap of ${formatAmount(limits.autonomousPerDay, token.decimals)} ${token.symbol}`,
          );
        case 'approval_expired':
          throw new WalletRefusal(
            'approval_expired',
            `transfer ${intent.id} expired before it was approved; nothing was sent`,
          );
        default:
          throw new WalletRefusal(
            'not_pending',
            `transfer ${intent.id} is ${describeStatus(result.intent?.status ?? 'failed')}, not waiting for approval`,
          );
      }
    }
    return this.follow(result.intent, this.options.confirmWaitMs);
  }

  /** Starts driving an intent on from wherever it is, unless this process already does. */
  private track(intent: TransferIntent): Promise<TransferIntent> {
    let tracker = this.trackers.get(intent.id);
    if (!tracker) {
      tracker = this.drive(intent).finally(() => this.trackers.delete(intent.id));
      this.trackers.set(intent.id, tracker);
      tracker.catch((error: unknown) =>
        this.options.logger.warn(
          { intent: intent.id, err: (error as Error).message },
          'wallet: transfer tracking stopped; reconciliation will resume it',
        ),
      );
    }
    return tracker;
  }

  /**
   * Tracks an intent and waits up to `waitMs` for it to be confirmed (or to end); the tracking
   * goes on in the background after that.
   */
  private async follow(intent: TransferIntent, waitMs: number): Promise<TransferIntent> {
    const ended = this.track(intent).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), waitMs);
    });
    let confirmed: ((done: TransferIntent) => void) | undefined;
    const whenConfirmed = new Promise<TransferIntent>((resolve) => {
      confirmed = resolve;
      this.confirmWaiters.set(intent.id, [...(this.confirmWaiters.get(intent.id) ?? []), resolve]);
    });
    const first = await Promise.race([ended, whenConfirmed, timeout]);
    clearTimeout(timer);
    // A waiter that timed out is dropped, so waiting never piles up behind a slow transfer.
    const left = (this.confirmWaiters.get(intent.id) ?? []).filter((w) => w !== confirmed);
    if (left.length > 0) this.confirmWaiters.set(intent.id, left);
    else this.confirmWaiters.delete(intent.id);
    return first ?? (await this.options.store.get(intent.id)) ?? intent;
  }

  private readonly confirmWaiters = new Map<string, ((intent: TransferIntent) => void)[]>();

  private settle(intent: TransferIntent): void {
    const waiters = this.confirmWaiters.get(intent.id);
    this.confirmWaiters.delete(intent.id);
    for (const resolve of waiters ?? []) resolve(intent);
  }

  private async drive(start: TransferIntent): Promise<TransferIntent> {
    const { store, rpc, signer } = this.options;
    let intent = start;
    if (intent.status === 'approved') {
      // Nothing was ever persisted for it, so nothing can have been broadcast: signing is safe.
      const blockhash = await rpc.latestBlockhash();
      const signed = await signTransfer(intent, signer, blockhash);
      const moved = await store.transition(intent.id, ['approved'], {
        status: 'signed',
        signed: {
          signature: signed.signature,
          transaction: Buffer.from(signed.bytes).toString('base64'),
          lastValidBlockHeight: blockhash.lastValidBlockHeight,
          signedAt: this.now(),
        },
        updatedAt: this.now(),
      });
      // Another tracker signed it first; its bytes are the only ones that may be sent.
      intent = moved ?? (await store.get(intent.id)) ?? intent;
    }
    let lastSent = 0;
    while (!this.stopped) {
      const signed = intent.signed;
      if (!signed || !['signed', 'sent', 'confirmed'].includes(intent.status)) break;
      const [state] = await rpc.signatureStates([signed.signature]);
      if (state) {
        intent = await this.record(intent, state);
        if (intent.status === 'finalized' || intent.status === 'failed') break;
      } else if ((await rpc.blockHeight()) > signed.lastValidBlockHeight) {
        // Past its last valid block height the bytes can never land; look once more, then close it.
        const [late] = await rpc.signatureStates([signed.signature]);
        intent = late
          ? await this.record(intent, late)
          : await this.fail(intent, 'expired before it landed; nothing was sent');
        if (intent.status === 'failed' || intent.status === 'finalized') break;
      } else if (this.now() - lastSent >= REBROADCAST_EVERY_MS) {
        lastSent = this.now();
        intent = await this.broadcast(intent);
      }
      await delay(this.options.confirmPollMs);
    }
    return intent;
  }

  private async broadcast(intent: TransferIntent): Promise<TransferIntent> {
    const signed = intent.signed;
    if (!signed) return intent;
    try {
      await this.options.rpc.send(Buffer.from(signed.transaction, 'base64'));
    } catch (error) {
      // An expired blockhash is settled by the height check; anything else is retried next round.
      if (!(error instanceof TransactionRejected && error.reason === 'blockhash_expired')) {
        this.options.logger.warn(
          { intent: intent.id, err: (error as Error).message },
          'wallet: broadcast failed',
        );
      }
      if (error instanceof TransactionRejected && error.reason === 'invalid') {
        return this.fail(intent, `the cluster refused it: ${error.message}`);
      }
      return intent;
    }
    if (intent.status !== 'signed') return intent;
    return (
      (await this.options.store.transition(intent.id, ['signed'], {
        status: 'sent',
        updatedAt: this.now(),
      })) ?? intent
    );
  }

  private async record(intent: TransferIntent, state: SignatureState): Promise<TransferIntent> {
    if (state.err !== null && state.err !== undefined) {
      return this.fail(intent, `landed but failed: ${JSON.stringify(state.err).slice(0, 200)}`, state.slot);
    }
    const next: IntentStatus | undefined =
      state.confirmationStatus === 'finalized'
        ? 'finalized'
        : state.confirmationStatus === 'confirmed' && intent.status !== 'confirmed'
          ? 'confirmed'
          : undefined;
    if (!next || next === intent.status) return intent;
    const moved = await this.options.store.transition(
      intent.id,
      ['signed', 'sent', ...(next === 'finalized' ? (['confirmed'] as const) : [])],
      {
        status: next,
        slot: state.slot,
        updatedAt: this.now(),
      },
    );
    if (!moved) return (await this.options.store.get(intent.id)) ?? intent;
    this.settle(moved);
    await this.tell(moved);
    return moved;
  }

  private async fail(intent: TransferIntent, error: string, slot?: number): Promise<TransferIntent> {
    const moved = await this.options.store.transition(intent.id, ['approved', 'signed', 'sent'], {
      status: 'failed',
      error,
      ...(slot !== undefined ? { slot } : {}),
      updatedAt: this.now(),
    });
    if (!moved) return (await this.options.store.get(intent.id)) ?? intent;
    this.settle(moved);
    await this.tell(moved);
    return moved;
  }

  private async tell(intent: TransferIntent): Promise<void> {
    this.options.onOutcome?.(intent.status, intent.id);
    const notify = this.options.notify;
    if (!notify) return;
    await notify(intent.requester, `wallet:${intent.id}:${intent.status}`, describeIntent(intent)).catch(
      (error: unknown) =>
        this.options.logger.warn(
          { intent: intent.id, err: (error as Error).message },
          'wallet: could not report a transfer',
        ),
    );
  }

  private async verified(): Promise<void> {
    await this.options.verify?.();
  }

  /** Anything the wallet cannot read or write means no: money does not move on a guess. */
  private async failClosed<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof WalletRefusal) throw error;
      this.options.logger.error(
        { err: (error as Error).message },
        'wallet: policy state unavailable; refusing',
      );
      throw new WalletRefusal(
        'policy_unavailable',
        'the wallet cannot read its policy state right now; nothing was sent',
      );
    }
  }
}

/** One line for a person: what, to whom, and where it stands. */
export function describeIntent(intent: TransferIntent): string {
  const amount = `${formatAmount(BigInt(intent.amount), intent.decimals)} ${intent.token}`;
  const base = `Transfer ${intent.id}: ${amount} to ${intent.recipient} — ${describeStatus(intent.status)}`;
  const signature =
    intent.signed && intent.status !== 'failed' ? ` (signature ${intent.signed.signature})` : '';
  const error = intent.error ? `: ${intent.error}` : '';
  return `${base}${error}${signature}`;
}

export function describeStatus(status: IntentStatus): string {
  switch (status) {
    case 'proposed':
      return 'being checked';
    case 'pending_approval':
      return 'waiting for an owner to approve';
    case 'approved':
      return 'approved, being signed and sent';
    case 'signed':
      return 'signed, being sent';
    case 'sent':
      return 'sent, waiting for confirmation';
    default:
      return status;
  }
}

/** Short enough to type in `/wallet approve`, unguessable enough not to collide. */
function newIntentId(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  let id = '';
  for (const byte of randomBytes(10)) id += alphabet[byte % alphabet.length];
  return id;
}
