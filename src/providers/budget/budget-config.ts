import { z } from 'zod';

const usd = z.number().nonnegative();

/** Hard caps for one scope, in USD. A missing cap is no cap; 0 allows only free calls. */
export const budgetLimitsSchema = z
  .object({
    /** Per UTC day (00:00 to 24:00 UTC). */
    dailyUsd: usd.optional(),
    /** Per UTC calendar month. */
    monthlyUsd: usd.optional(),
  })
  .strict();

export const budgetConfigSchema = z
  .object({
    /** Everything the agent spends, on every provider and node together. */
    global: budgetLimitsSchema.optional(),
    /** By provider id; providers not listed have no provider-level cap. */
    perProvider: z.record(z.string().min(1), budgetLimitsSchema).optional(),
    /** Applies to each person separately (calls without a person are not person-capped). */
    perPerson: budgetLimitsSchema.optional(),
    /** `onThreshold` fires once when spending passes this fraction of a cap, and once at 100%. Default 0.8. */
    warnAtFraction: z.number().gt(0).max(1).default(0.8),
  })
  .strict();

/** USD per million tokens, for config price overrides (see `lookupPrice`). */
export const modelPriceSchema = z
  .object({
    inputPerMTok: usd,
    outputPerMTok: usd,
  })
  .strict();

/** Price overrides by model name or model-name prefix. */
export const priceOverridesSchema = z.record(z.string().min(1), modelPriceSchema);

export type BudgetLimits = z.infer<typeof budgetLimitsSchema>;
/** The parsed config (defaults applied). */
export type BudgetConfig = z.infer<typeof budgetConfigSchema>;
/** What a config file may contain. */
export type BudgetConfigInput = z.input<typeof budgetConfigSchema>;

/** True when at least one cap is set. (The cost ledger in /status needs a real guard even without caps.) */
export function hasBudgets(config: BudgetConfig): boolean {
  const set = (limits: BudgetLimits | undefined) =>
    limits?.dailyUsd !== undefined || limits?.monthlyUsd !== undefined;
  return set(config.global) || set(config.perPerson) || Object.values(config.perProvider ?? {}).some(set);
}
