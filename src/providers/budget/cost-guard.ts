/**
 * The gateway's view of money: reserve the estimated cost of a call before making it, settle
 * the real cost after it, or release the reservation when the call failed. Implementations make
 * reserve-and-check atomic (a Lua script in Redis), so concurrent calls on every node together
 * can never pass a hard cap by more than the estimation error of the calls in flight.
 */
export type BudgetScope = 'global' | 'provider' | 'person';

export interface ReserveInput {
  providerId: string;
  model: string;
  personId?: string;
  channel?: string;
  /** Estimated cost of the call in USD (input estimate plus the maximum output). */
  estimatedUsd: number;
}

export interface Reservation {
  id: string;
  input: ReserveInput;
  /**
   * When it was reserved (epoch ms). The ledger guards charge the settled cost to this moment's
   * day and month, the periods the estimate was reserved in, so a call that ends just after
   * midnight cannot spend in a day that never reserved for it.
   */
  reservedAt?: number;
  /**
   * Set when no cap held any of the estimate (none applied, or the call was free): settling has
   * nothing to free then, and releasing nothing to do. Unset means it may hold budget.
   */
  holdsNothing?: true;
}

export interface SettleInput {
  usd: number;
  inputTokens: number;
  outputTokens: number;
}

export class BudgetExceededError extends Error {
  readonly code = 'budget_exceeded';
  constructor(
    readonly scope: BudgetScope,
    readonly period: 'day' | 'month',
    readonly limitUsd: number,
    readonly subject: string,
  ) {
    super(
      `the ${period === 'day' ? 'daily' : 'monthly'} ${scope} budget${scope === 'global' ? '' : ` for ${subject}`} of $${limitUsd} is used up`,
    );
    this.name = 'BudgetExceededError';
  }
}

export function isBudgetExceededError(error: unknown): error is BudgetExceededError {
  return error instanceof BudgetExceededError;
}

export interface CostGuard {
  /** Throws `BudgetExceededError` when the call would pass a hard cap. */
  reserve(input: ReserveInput): Promise<Reservation>;
  settle(reservation: Reservation, actual: SettleInput): Promise<void>;
  release(reservation: Reservation): Promise<void>;
}

/** No budgets configured: every call is allowed and nothing is recorded. */
export const unlimitedCostGuard: CostGuard = {
  async reserve(input) {
    return { id: 'unlimited', input };
  },
  async settle() {},
  async release() {},
};
