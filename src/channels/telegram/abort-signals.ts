import type { Api } from 'grammy';

/** The polyfill's signal type grammy's methods declare; native signals work at runtime. */
export type GrammySignal = NonNullable<Parameters<Api['sendMessage']>[3]>;

export function asGrammySignal(signal: AbortSignal): GrammySignal {
  return signal as unknown as GrammySignal;
}
