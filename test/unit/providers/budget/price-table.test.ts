import { describe, expect, it } from 'vitest';
import { estimateTokens } from '../../../../src/core/context-window.js';
import {
  budgetConfigSchema,
  hasBudgets,
  priceOverridesSchema,
} from '../../../../src/providers/budget/budget-config.js';
import {
  costUsd,
  DEFAULT_PRICES,
  estimateCallUsd,
  estimateInputTokens,
  FREE,
  lookupPrice,
  PRICES_CHECKED,
} from '../../../../src/providers/budget/price-table.js';

describe('price table', () => {
  it('has every default model, each with the date its price was checked', () => {
    for (const model of [
      'gpt-4o',
      'gpt-4o-mini',
      'gpt-4.1',
      'gpt-4.1-mini',
      'o3-mini',
      'claude-sonnet-4-5',
      'claude-haiku-4-5',
      'claude-opus-4-1',
      'deepseek-chat',
      'deepseek-reasoner',
    ]) {
      const entry = DEFAULT_PRICES[model];
      expect(entry, model).toBeDefined();
      expect(entry?.checked).toBe(PRICES_CHECKED);
      expect(entry?.inputPerMTok).toBeGreaterThan(0);
      expect(entry?.outputPerMTok).toBeGreaterThanOrEqual(entry?.inputPerMTok ?? 0);
    }
    expect(PRICES_CHECKED).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('finds a model by exact name', () => {
    expect(lookupPrice('gpt-4o')).toBe(DEFAULT_PRICES['gpt-4o']);
    expect(lookupPrice('claude-opus-4-1')).toMatchObject({ inputPerMTok: 15, outputPerMTok: 75 });
  });

  it('finds a dated snapshot by the longest matching prefix', () => {
    expect(lookupPrice('gpt-4o-mini-2024-07-18')).toBe(DEFAULT_PRICES['gpt-4o-mini']);
    expect(lookupPrice('gpt-4o-2024-08-06')).toBe(DEFAULT_PRICES['gpt-4o']);
    expect(lookupPrice('gpt-4.1-mini-2025-04-14')).toBe(DEFAULT_PRICES['gpt-4.1-mini']);
    expect(lookupPrice('claude-sonnet-4-5-20250929')).toBe(DEFAULT_PRICES['claude-sonnet-4-5']);
  });

  it('only matches a prefix that ends at a separator', () => {
    expect(lookupPrice('gpt-4oxyz')).toBeUndefined();
    expect(lookupPrice('gpt-4')).toBeUndefined();
  });

  it('returns undefined for an unknown model', () => {
    expect(lookupPrice('llama3.1:8b')).toBeUndefined();
    expect(lookupPrice('')).toBeUndefined();
  });

  it('lets config overrides win over the defaults', () => {
    const overrides = { 'gpt-4o': { inputPerMTok: 1, outputPerMTok: 2 }, 'llama3.1': FREE };
    expect(lookupPrice('gpt-4o', { overrides })).toEqual({ inputPerMTok: 1, outputPerMTok: 2 });
    // Exact and prefix: the override of the same name wins.
    expect(lookupPrice('gpt-4o-2024-08-06', { overrides })).toEqual({ inputPerMTok: 1, outputPerMTok: 2 });
    // A longer, more specific default still beats a shorter override prefix.
    expect(lookupPrice('gpt-4o-mini-2024-07-18', { overrides })).toBe(DEFAULT_PRICES['gpt-4o-mini']);
    // Unknown to the defaults, known to the config.
    expect(lookupPrice('llama3.1:8b', { overrides })).toEqual(FREE);
  });

  it("uses a provider's declared price (such as free for a local server) before any table", () => {
    expect(lookupPrice('deepseek-chat', { providerPrice: FREE })).toEqual(FREE);
    expect(costUsd(FREE, 1_000_000, 1_000_000)).toBe(0);
  });

  it('computes costs from USD per million tokens', () => {
    const price = { inputPerMTok: 2.5, outputPerMTok: 10 };
    expect(costUsd(price, 1_000_000, 0)).toBe(2.5);
    expect(costUsd(price, 2000, 500)).toBeCloseTo(0.005 + 0.005, 12);
    expect(costUsd(price, Number.NaN, -5)).toBe(0);
  });

  it('estimates input tokens as the context window does', () => {
    const text = 'x'.repeat(1000);
    expect(estimateInputTokens(text)).toBe(estimateTokens(text));
    expect(estimateInputTokens(text)).toBe(254);
    expect(estimateCallUsd({ inputPerMTok: 1, outputPerMTok: 2 }, text, 1000)).toBeCloseTo(
      (254 * 1 + 1000 * 2) / 1e6,
      12,
    );
  });
});

describe('budget config', () => {
  it('defaults warnAtFraction to 0.8 and accepts every scope', () => {
    const config = budgetConfigSchema.parse({
      global: { dailyUsd: 5, monthlyUsd: 100 },
      perProvider: { openai: { dailyUsd: 3 } },
      perPerson: { monthlyUsd: 1 },
    });
    expect(config.warnAtFraction).toBe(0.8);
    expect(hasBudgets(config)).toBe(true);
    expect(hasBudgets(budgetConfigSchema.parse({}))).toBe(false);
    expect(hasBudgets(budgetConfigSchema.parse({ perProvider: { x: {} } }))).toBe(false);
  });

  it('is strict and refuses negative money', () => {
    expect(budgetConfigSchema.safeParse({ global: { dailyUsd: -1 } }).success).toBe(false);
    expect(budgetConfigSchema.safeParse({ global: { weeklyUsd: 1 } }).success).toBe(false);
    expect(budgetConfigSchema.safeParse({ perUser: {} }).success).toBe(false);
    expect(budgetConfigSchema.safeParse({ warnAtFraction: 0 }).success).toBe(false);
    expect(budgetConfigSchema.safeParse({ warnAtFraction: 1.5 }).success).toBe(false);
    expect(budgetConfigSchema.safeParse({ global: { dailyUsd: 0 } }).success).toBe(true);
    expect(priceOverridesSchema.safeParse({ m: { inputPerMTok: -1, outputPerMTok: 0 } }).success).toBe(false);
  });
});
