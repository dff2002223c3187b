import type { ProviderRoute } from './route.js';

export type RoutingStrategy = 'priority' | 'cost' | 'latency' | 'weighted';

export interface CallEstimate {
  inputTokens: number;
  outputTokens: number;
}

export function estimatedCostUsd(route: ProviderRoute, estimate: CallEstimate): number {
  const price = route.settings.price;
  if (!price) return Number.POSITIVE_INFINITY;
  return (
    (estimate.inputTokens * price.inputPerMTok + estimate.outputTokens * price.outputPerMTok) / 1_000_000
  );
}

/**
 * Orders eligible routes by the configured strategy. The gateway tries them in this order, so
 * the strategy decides the primary and the failover sequence alike.
 */
export function orderRoutes(
  routes: readonly ProviderRoute[],
  strategy: RoutingStrategy,
  estimate: CallEstimate,
  random: () => number = Math.random,
): ProviderRoute[] {
  const list = [...routes];
  switch (strategy) {
    case 'priority':
      return list.sort((a, b) => a.settings.priority - b.settings.priority);
    case 'cost':
      return list.sort(
        (a, b) =>
          estimatedCostUsd(a, estimate) - estimatedCostUsd(b, estimate) ||
          a.settings.priority - b.settings.priority,
      );
    case 'latency':
      // An unmeasured provider sorts first once, so it gets measured.
      return list.sort(
        (a, b) => (a.latency.ewma ?? 0) - (b.latency.ewma ?? 0) || a.settings.priority - b.settings.priority,
      );
    case 'weighted':
      return weightedOrder(list, random);
  }
}

/** Draws without replacement, each pick in proportion to its weight. */
function weightedOrder(routes: ProviderRoute[], random: () => number): ProviderRoute[] {
  const remaining = routes.filter((r) => r.settings.weight > 0);
  const zero = routes.filter((r) => r.settings.weight <= 0);
  const ordered: ProviderRoute[] = [];
  while (remaining.length > 0) {
    const total = remaining.reduce((sum, r) => sum + r.settings.weight, 0);
    let pick = random() * total;
    let index = remaining.findIndex((r) => {
      pick -= r.settings.weight;
      return pick < 0;
    });
    if (index === -1) index = remaining.length - 1;
    ordered.push(...remaining.splice(index, 1));
  }
  return [...ordered, ...zero];
}
