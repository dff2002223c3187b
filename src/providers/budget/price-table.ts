import { estimateTokens } from '../../core/context-window.js';

/** USD per million tokens, the unit every vendor's price page uses. */
export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
}

export interface PriceEntry extends ModelPrice {
  /** When this price was last compared with the vendor's price page (YYYY-MM-DD). */
  checked: string;
}

/**
 * The day the defaults below were last checked. They were compared with copies of the vendors'
 * price pages (and price trackers citing them) available on that day, not with a live page, so
 * treat them as a starting point.
 */
export const PRICES_CHECKED = '2026-11-25';

/**
 * DEFAULT prices, standard (non-batch, uncached-input) tier. Vendors change prices without
 * notice: these are defaults to OVERRIDE IN CONFIG, and the config's prices always win.
 *
 * - Anthropic bills Sonnet 4.5 prompts over 200K tokens at a higher rate ($6 / $22.50); the
 *   table holds the ordinary rate.
 * - DeepSeek: cache-miss input price of the V3.2 generation, which both endpoints serve.
 *
 * Cached-input discounts are ignored, so costs err on the high side.
 */
export const DEFAULT_PRICES: Readonly<Record<string, PriceEntry>> = Object.freeze({
  'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10, checked: PRICES_CHECKED },
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6, checked: PRICES_CHECKED },
  'gpt-4.1': { inputPerMTok: 2, outputPerMTok: 8, checked: PRICES_CHECKED },
  'gpt-4.1-mini': { inputPerMTok: 0.4, outputPerMTok: 1.6, checked: PRICES_CHECKED },
  'o3-mini': { inputPerMTok: 1.1, outputPerMTok: 4.4, checked: PRICES_CHECKED },
  'claude-sonnet-4-5': { inputPerMTok: 3, outputPerMTok: 15, checked: PRICES_CHECKED },
  'claude-haiku-4-5': { inputPerMTok: 1, outputPerMTok: 5, checked: PRICES_CHECKED },
  'claude-opus-4-1': { inputPerMTok: 15, outputPerMTok: 75, checked: PRICES_CHECKED },
  'deepseek-chat': { inputPerMTok: 0.28, outputPerMTok: 0.42, checked: PRICES_CHECKED },
  'deepseek-reasoner': { inputPerMTok: 0.28, outputPerMTok: 0.42, checked: PRICES_CHECKED },
});

/** A local model (Ollama, vLLM on your own hardware) costs nothing per token. */
export const FREE: ModelPrice = Object.freeze({ inputPerMTok: 0, outputPerMTok: 0 });

export interface PriceLookupOptions {
  /** Prices from the config, by model name (or model-name prefix). They replace defaults of the same name. */
  overrides?: Readonly<Record<string, ModelPrice>>;
  /**
   * A price the provider's config declares for every model it serves, such as `FREE` for a local
   * server. It wins over both tables, so a local server that happens to serve a model with a
   * paid vendor's name is not charged the vendor's price.
   */
  providerPrice?: ModelPrice;
  /** Replaces `DEFAULT_PRICES` (tests). */
  defaults?: Readonly<Record<string, ModelPrice>>;
}

/**
 * The price of one model, or undefined when nothing is known about it.
 *
 * Order: the provider's declared price; then the exact model name; then the longest table entry
 * that is a prefix of the model name and ends at a separator (`-`, `:`, `@`, `_`, `/`, `.`), so a
 * dated snapshot such as `gpt-4o-mini-2024-07-18` finds `gpt-4o-mini` rather than `gpt-4o`.
 * Config overrides are merged over the defaults before matching: an override wins over the
 * default of the same name, and a more specific default still beats a shorter override prefix.
 *
 * Undefined is deliberate: the caller decides. A paid provider whose model is unknown should be
 * given a price in the config; budgets cannot be enforced for calls whose cost is unknown.
 */
export function lookupPrice(model: string, options: PriceLookupOptions = {}): ModelPrice | undefined {
  if (options.providerPrice) return options.providerPrice;
  const overrides = options.overrides ?? {};
  const defaults = options.defaults ?? DEFAULT_PRICES;
  const exact = own(overrides, model) ?? own(defaults, model);
  if (exact) return exact;
  let best: { name: string; price: ModelPrice } | undefined;
  for (const table of [defaults, overrides]) {
    for (const [name, price] of Object.entries(table)) {
      if (!isPrefixAtSeparator(name, model)) continue;
      // `>=` with overrides scanned last: an override of the same length wins.
      if (!best || name.length >= best.name.length) best = { name, price };
    }
  }
  return best?.price;
}

/** USD for one call. Tokens that are not finite count as none. */
export function costUsd(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  const input = Number.isFinite(inputTokens) ? Math.max(0, inputTokens) : 0;
  const output = Number.isFinite(outputTokens) ? Math.max(0, outputTokens) : 0;
  return (input * price.inputPerMTok + output * price.outputPerMTok) / 1_000_000;
}

/** The same rough estimate the context window uses: four characters a token, plus overhead. */
export function estimateInputTokens(text: string): number {
  return estimateTokens(text);
}

/**
 * The cost to reserve before a call: the estimated prompt plus the most the reply may cost
 * (its output limit), so a reservation errs on the high side.
 */
export function estimateCallUsd(price: ModelPrice, promptText: string, maxOutputTokens: number): number {
  return costUsd(price, estimateInputTokens(promptText), maxOutputTokens);
}

const SEPARATORS = new Set(['-', ':', '@', '_', '/', '.']);

function isPrefixAtSeparator(prefix: string, model: string): boolean {
  return (
    model.length > prefix.length && model.startsWith(prefix) && SEPARATORS.has(model.charAt(prefix.length))
  );
}

function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}
