import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../core/config/gateway-schema.js';
import type { ProviderConfig } from '../../core/config/schema.js';
import type { JobDefinition } from '../../jobs/job-scheduler.js';
import type { CostGuard } from '../budget/cost-guard.js';
import { lookupPrice } from '../budget/price-table.js';
import { createProvider } from '../create-provider.js';
import { contextWindowFor } from '../model-limits.js';
import { Gateway } from './gateway.js';
import type { GatewayObserver } from './gateway-observer.js';
import { ProviderRoute, type RouteSettings } from './route.js';
import { LocalProviderStateStore, type ProviderStateStore, RedisProviderStateStore } from './shared-state.js';

export interface BuiltGateway {
  gateway: Gateway;
  state: ProviderStateStore;
  /** The active health check, to run on the scheduler. */
  probeJob: JobDefinition;
}

export interface BuildGatewayDeps {
  logger: Logger;
  costGuard: CostGuard;
  redis?: Redis;
  keyPrefix: string;
  fetch?: typeof globalThis.fetch;
  observer?: GatewayObserver;
  /** The current API key of a provider whose key may rotate (Vault); undefined: its config key. */
  apiKeyFor?: (config: ProviderConfig) => () => string | undefined;
  now?: () => number;
}

/** Builds the gateway over the configured providers, with shared state in Redis when there is one. */
export function buildGateway(
  providers: readonly ProviderConfig[],
  config: GatewayConfig,
  deps: BuildGatewayDeps,
): BuiltGateway {
  const routes = providers.map((providerConfig, index) => {
    const getApiKey = deps.apiKeyFor?.(providerConfig);
    return new ProviderRoute(
      createProvider(providerConfig, deps.fetch, getApiKey ? { getApiKey } : {}),
      routeSettings(providerConfig, index, getApiKey),
      config.breaker,
    );
  });
  for (const route of routes) {
    if (!route.settings.price) {
      deps.logger.warn(
        { provider: route.id, model: route.provider.model },
        'no price known for this model: its calls are not counted against budgets; set the provider\'s "price" (0 for a free local model)',
      );
    }
  }
  const state: ProviderStateStore = deps.redis
    ? new RedisProviderStateStore({
        redis: deps.redis,
        keyPrefix: deps.keyPrefix,
        providerIds: routes.map((r) => r.id),
        openTtlMs: 10 * 60_000,
        refreshMs: 2000,
        ...(deps.now ? { now: deps.now } : {}),
      })
    : new LocalProviderStateStore(deps.now);
  const gateway = new Gateway({
    ...config,
    routes,
    state,
    costGuard: deps.costGuard,
    logger: deps.logger.child({ component: 'gateway' }),
    ...(deps.observer ? { observer: deps.observer } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  return {
    gateway,
    state,
    probeJob: {
      name: 'provider-health-probe',
      everyMs: config.probeEveryMs,
      run: (signal) => gateway.probeAll(signal),
    },
  };
}

/**
 * `getApiKey`: the provider's current key when it may rotate. The fingerprint follows it, so a
 * provider disabled for a refused key is tried again once the key is rotated.
 */
export function routeSettings(
  config: ProviderConfig,
  index: number,
  getApiKey?: () => string | undefined,
): RouteSettings {
  const price = lookupPrice(config.model, config.price ? { providerPrice: config.price } : {});
  let hashedKey: string | undefined;
  let fingerprint = '';
  return {
    priority: config.priority ?? index,
    weight: config.weight,
    contextWindow: config.contextWindow ?? contextWindowFor(config.model),
    tools: config.tools,
    streaming: config.streaming,
    ...(price ? { price } : {}),
    get fingerprint() {
      const key = getApiKey?.() ?? config.apiKey ?? '';
      if (key !== hashedKey) {
        hashedKey = key;
        fingerprint = credentialsFingerprint(config, key);
      }
      return fingerprint;
    },
  };
}

/** A short hash of what identifies the credentials: a new key or endpoint gives a new fingerprint. */
function credentialsFingerprint(config: ProviderConfig, apiKey: string): string {
  const parts = [config.kind, apiKey, 'baseURL' in config ? (config.baseURL ?? '') : ''];
  if ('endpoint' in config) parts.push(String(config.endpoint));
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16);
}
