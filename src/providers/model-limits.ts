/**
 * Context windows (prompt plus reply, in tokens) of common models, so the gateway can send a
 * long prompt to a model that fits it. Matched by longest prefix; a provider's `contextWindow`
 * setting overrides this.
 */
const CONTEXT_WINDOWS: Record<string, number> = {
  'gpt-4o': 128_000,
  'gpt-4o-mini': 128_000,
  'gpt-4.1': 1_047_576,
  'gpt-4.1-mini': 1_047_576,
  'o3-mini': 200_000,
  'claude-': 200_000,
  'deepseek-': 128_000,
};

/** Unknown models (often small local ones) get a conservative window. */
export const DEFAULT_CONTEXT_WINDOW = 32_000;

export function contextWindowFor(model: string): number {
  let best: string | undefined;
  for (const prefix of Object.keys(CONTEXT_WINDOWS)) {
    if (model.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
  }
  return best === undefined ? DEFAULT_CONTEXT_WINDOW : (CONTEXT_WINDOWS[best] as number);
}
