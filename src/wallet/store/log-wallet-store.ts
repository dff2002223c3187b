import { join } from 'node:path';
import type { Logger } from 'pino';
import { AppendLog } from '../../core/memory/append-log.js';
import type { IntentStatus, TransferIntent } from '../transfer-intent.js';
import {
  type AuthorizeResult,
  type CapCheck,
  decideAuthorization,
  type WalletStore,
} from './wallet-store.js';

export const WALLET_LOG_FILE = 'wallet.log';

export interface LogWalletStoreOptions {
  dataDir: string;
  logger?: Logger;
}

/**
 * Intents in the local append-only log (embedded mode: one process). Each change appends the
 * whole intent and is fsync'd before it is visible, so what a crash leaves on disk is exactly
 * what the wallet last acted on. Changes run one at a time, which makes compare-and-set and the
 * cap check atomic here.
 */
export class LogWalletStore implements WalletStore {
  readonly backend = 'log' as const;
  private readonly log: AppendLog<TransferIntent>;
  private readonly intents = new Map<string, TransferIntent>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: LogWalletStoreOptions) {
    this.log = new AppendLog<TransferIntent>(join(options.dataDir, WALLET_LOG_FILE));
  }

  async open(): Promise<void> {
    const loaded = this.log.open();
    if (loaded.skipped > 0) {
      this.options.logger?.warn(
        { path: this.log.path, skipped: loaded.skipped, tornTail: loaded.tornTail },
        'wallet log: skipped damaged records (a torn last record is expected after a crash)',
      );
    }
    // Last record wins: each is the whole intent as of that change.
    for (const intent of loaded.records) this.intents.set(intent.id, intent);
  }

  async close(): Promise<void> {
    await this.chain.catch(() => {});
    await this.log.close();
  }

  create(intent: TransferIntent): Promise<void> {
    return this.exclusive(async () => {
      if (this.intents.has(intent.id)) throw new Error(`intent ${intent.id} exists`);
      await this.write(intent);
    });
  }

  async get(id: string): Promise<TransferIntent | undefined> {
    return this.intents.get(id);
  }

  transition(
    id: string,
    from: readonly IntentStatus[],
    patch: Partial<TransferIntent> & { status: IntentStatus },
  ): Promise<TransferIntent | undefined> {
    return this.exclusive(async () => {
      const current = this.intents.get(id);
      if (!current || !from.includes(current.status)) return undefined;
      const next = { ...current, ...patch, id };
      await this.write(next);
      return next;
    });
  }

  authorize(
    id: string,
    from: readonly IntentStatus[],
    caps: CapCheck,
    patch: Partial<TransferIntent>,
    now: number,
  ): Promise<AuthorizeResult> {
    return this.exclusive(async (): Promise<AuthorizeResult> => {
      const result = await decideAuthorization(this.intents.get(id), from, caps, patch, now, () =>
        this.intents.values(),
      );
      if (result.ok) await this.write(result.intent);
      return result;
    });
  }

  async recent(limit: number): Promise<TransferIntent[]> {
    return [...this.intents.values()].sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
  }

  async withStatus(statuses: ReadonlySet<IntentStatus>): Promise<TransferIntent[]> {
    return [...this.intents.values()]
      .filter((i) => statuses.has(i.status))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Durable first, visible second: nothing acts on a change the disk does not hold. */
  private async write(intent: TransferIntent): Promise<void> {
    await this.log.append(intent);
    this.intents.set(intent.id, intent);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.catch(() => {}).then(work);
    this.chain = run;
    return run;
  }
}
