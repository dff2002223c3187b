import type { BudgetStatus, CostSnapshot } from '../../providers/budget/ledger.js';
import type { ProviderSnapshot } from '../../providers/gateway/gateway.js';

/** The `/providers` text: one block per provider, then the budgets that apply. */
export function formatProvidersReport(
  providers: readonly ProviderSnapshot[],
  costs: CostSnapshot,
  now = Date.now(),
): string {
  if (providers.length === 0) return 'No providers are configured.';
  const lines: string[] = [];
  for (const p of providers) {
    const spent = costs.providers[p.id];
    const cooldown = p.cooldownUntil
      ? `, rate-limited for ${Math.ceil((p.cooldownUntil - now) / 1000)} s`
      : '';
    const disabled = p.disabled ? `, DISABLED: ${p.disabled}` : '';
    const latency =
      p.latencyMs.p50 === undefined
        ? 'no latency yet'
        : `latency p50 ${p.latencyMs.p50} ms, p95 ${p.latencyMs.p95} ms`;
    lines.push(
      `${p.id} (${p.kind}, ${p.model}): circuit ${p.breaker}${cooldown}${disabled}`,
      `  ${latency}; ${spent?.dayRequests ?? 0} requests today, ${p.lastHour.errors} errors in the last hour; cost today $${(spent?.dayUsd ?? 0).toFixed(4)}, this month $${(spent?.monthUsd ?? 0).toFixed(4)}`,
    );
    for (const budget of costs.budgets.filter((b) => b.scope === 'provider' && b.subject === p.id)) {
      lines.push(`  ${budgetLine(budget)}`);
    }
  }
  const global = costs.budgets.filter((b) => b.scope === 'global');
  if (global.length > 0) lines.push('Global budget:', ...global.map((b) => `  ${budgetLine(b)}`));
  return lines.join('\n');
}

function budgetLine(b: BudgetStatus): string {
  const left = Math.max(0, b.limitUsd - b.spentUsd - b.reservedUsd);
  return `${b.period === 'day' ? 'daily' : 'monthly'} budget $${b.limitUsd}: $${b.spentUsd.toFixed(4)} spent, $${left.toFixed(4)} left (${Math.round(b.fraction * 100)}%)`;
}
