import type { Api } from 'grammy';

/**
 * grammy hands transformers signals from the `abort-controller` polyfill, which
 * `AbortSignal.any` refuses; this links any signal-like objects into one native signal.
 */
export interface SignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface LinkedSignal {
  signal: AbortSignal;
  /** Removes the listeners and the timer; call when the operation is over. */
  dispose(): void;
}

/** A signal that aborts when any of `sources` aborts, or after `timeoutMs` if given. */
export function linkSignals(sources: readonly (SignalLike | undefined)[], timeoutMs?: number): LinkedSignal {
  const controller = new AbortController();
  const abort = () => controller.abort();
  const present = sources.filter((s): s is SignalLike => s !== undefined);
  for (const source of present) {
    if (source.aborted) controller.abort();
    else source.addEventListener('abort', abort);
  }
  const timer = timeoutMs === undefined ? undefined : setTimeout(abort, timeoutMs);
  timer?.unref();
  return {
    signal: controller.signal,
    dispose: () => {
      if (timer !== undefined) clearTimeout(timer);
      for (const source of present) source.removeEventListener('abort', abort);
    },
  };
}

/** The polyfill's signal type grammy's methods declare; native signals work at runtime. */
export type GrammySignal = NonNullable<Parameters<Api['sendMessage']>[3]>;

export function asGrammySignal(signal: AbortSignal): GrammySignal {
  return signal as unknown as GrammySignal;
}
