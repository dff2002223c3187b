import type { Logger } from 'pino';
import type { JobDefinition } from '../../jobs/job-scheduler.js';

/** Hourly: a new day's first roll-up drops yesterday's records within the hour. */
export const BUDGET_ROLL_UP_EVERY_MS = 3_600_000;

/**
 * The budget roll-up for the local cost log (`LocalCostGuard.rollUp`): past periods' records are
 * dropped while the agent runs, not only at its next start. The Redis ledger needs no job: each
 * period's keys expire by TTL a day after the period ends.
 */
export function budgetRollUpJob(costs: { rollUp(): Promise<boolean> }, logger: Logger): JobDefinition {
  return {
    name: 'budget-roll-up',
    everyMs: BUDGET_ROLL_UP_EVERY_MS,
    run: async () => {
      if (await costs.rollUp()) logger.debug('cost log rolled up to the current periods');
    },
  };
}
