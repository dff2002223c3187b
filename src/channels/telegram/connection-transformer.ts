import type { Transformer } from 'grammy';
import { LinkedAbort } from '../../core/linked-abort.js';
import { type BackoffOptions, backoffDelay, sleep } from '../backoff.js';
import { asGrammySignal } from './abort-signals.js';

/** What the connection transformer reports to, and asks of, the adapter. */
export interface ConnectionWatch {
  backoff: Required<BackoffOptions>;
  /** Aborted when the adapter stops: ends waits between retries. */
  stopSignal: AbortSignal;
  /** Longest wait for an answer, on top of the long-poll timeout for `getUpdates`. */
  requestTimeoutMs: number;
  /** A connection call succeeded. */
  onUp(method: string): void;
  /** A connection call failed (an error thrown, or an API error answer). */
  onDown(method: string, error: unknown): void;
  /** Rewrites the acknowledging `offset` of `getUpdates` (see AckHoldback). */
  capOffset?(offset: number): number;
  /** The update ids of each `getUpdates` answer. */
  onPolled?(updateIds: readonly number[]): void;
}

/** The calls that make the bot's connection; replies (`sendMessage`) are retried by the outbox. */
const CONNECTION_METHODS = new Set(['getMe', 'deleteWebhook', 'getUpdates']);
/** With `pollTimeoutSeconds: 0` Telegram answers at once; grammy would ask again at once. */
const SHORT_POLL_INTERVAL_MS = 1_000;
const STOP_REQUEST_TIMEOUT_MS = 2_000;

/**
 * Owns retries of the connection calls, so that neither grammy's fixed 3 s wait on a failed
 * `getUpdates` nor its own doubling-to-20-minutes retry of `getMe`/`deleteWebhook` applies: network
 * errors and 5xx answers are retried here with the adapter's back-off (capped, so the bot is back
 * within seconds of Telegram), and health is reported on every attempt. API errors below 500 are
 * passed to grammy, which stops polling on 401/409 (the adapter restarts it) and waits out 429.
 */
export function connectionTransformer(watch: ConnectionWatch): Transformer {
  return async (prev, method, payload, signal) => {
    if (!CONNECTION_METHODS.has(method)) return prev(method, payload, signal);
    const polling = method === 'getUpdates';
    const params = (payload ?? {}) as { offset?: unknown; timeout?: unknown };
    const body =
      polling && typeof params.offset === 'number' && watch.capOffset !== undefined
        ? ({ ...params, offset: watch.capOffset(params.offset) } as typeof payload)
        : payload;
    const pollMs = polling && typeof params.timeout === 'number' ? params.timeout * 1000 : 0;
    // grammy aborts its own signal in bot.stop(), then acknowledges with one last getUpdates, the
    // only one without a signal. It must go out (the stop signal is not linked into getUpdates),
    // but it is best effort: the next poll's offset acknowledges the same. So one attempt with a
    // short timeout, and neither stopping nor a token switch waits on a dead server.
    const finalAck = polling && signal === undefined;
    for (let attempt = 0; ; attempt++) {
      const timeoutMs =
        finalAck || watch.stopSignal.aborted
          ? Math.min(watch.requestTimeoutMs, STOP_REQUEST_TIMEOUT_MS)
          : pollMs + watch.requestTimeoutMs;
      const request = new LinkedAbort(polling ? [signal] : [signal, watch.stopSignal], timeoutMs);
      let failure: unknown;
      try {
        const response = await prev(method, body, asGrammySignal(request.signal));
        if (response.ok) {
          watch.onUp(method);
          if (polling) {
            const updates = response.result as unknown as readonly { update_id: number }[];
            watch.onPolled?.(updates.map((u) => u.update_id));
            if (pollMs === 0 && updates.length === 0 && signal !== undefined)
              await sleep(SHORT_POLL_INTERVAL_MS, watch.stopSignal);
          }
          return response;
        }
        watch.onDown(method, `${method}: ${response.error_code} ${response.description}`);
        if (response.error_code < 500 || finalAck || isCancelled(signal, watch.stopSignal)) return response;
        failure = response;
      } catch (error) {
        failure = error;
        if (finalAck || isCancelled(signal, watch.stopSignal)) throw error;
        watch.onDown(method, error);
      } finally {
        request.dispose();
      }
      const wait = new LinkedAbort([signal, watch.stopSignal]);
      await sleep(backoffDelay(attempt, watch.backoff), wait.signal);
      wait.dispose();
      if (isCancelled(signal, watch.stopSignal)) {
        if (failure instanceof Error) throw failure;
        throw new Error(`${method} cancelled while retrying`, { cause: failure });
      }
    }
  };
}

function isCancelled(signal: { aborted: boolean } | undefined, stop: AbortSignal): boolean {
  return signal?.aborted === true || stop.aborted;
}
