import type { Logger } from 'pino';
import type { AgentConfig, ProviderConfig } from '../core/config/schema.js';
import { AnthropicProvider } from './anthropic-provider.js';
import { AzureOpenAiProvider } from './azure-openai-provider.js';
import { OpenAiProvider } from './openai-provider.js';
import type { ChatProvider } from './provider.js';
import { UnconfiguredProvider } from './unconfigured-provider.js';

export interface CreateProviderDeps {
  /**
   * The provider's current API key, asked before every request, so a rotated key (Vault) is
   * used without rebuilding the provider; when it returns undefined, `config.apiKey` is used.
   */
  getApiKey?: () => string | undefined;
}

export function createProvider(
  config: ProviderConfig,
  fetch?: typeof globalThis.fetch,
  deps: CreateProviderDeps = {},
): ChatProvider {
  const extra = { ...(fetch ? { fetch } : {}), ...(deps.getApiKey ? { getApiKey: deps.getApiKey } : {}) };
  if (config.kind === 'anthropic') {
    return new AnthropicProvider({ ...config, ...extra });
  }
  if (config.kind === 'azure-openai') {
    return new AzureOpenAiProvider({ ...config, ...extra });
  }
  return new OpenAiProvider({ ...config, ...extra });
}

/**
 * What the agent answers with when no provider is configured: a local OpenAI-compatible server
 * if one answers at `localProbe.baseURL`, otherwise a stand-in whose replies say what to set.
 */
export async function selectFallbackProvider(
  config: Readonly<AgentConfig>,
  deps: { logger: Logger; fetch?: typeof globalThis.fetch },
): Promise<ChatProvider> {
  const local = config.localProbe.enabled ? await findLocalProvider(config, deps) : undefined;
  if (local) return local;
  deps.logger.warn(
    'no LLM provider configured: set OPENAI_API_KEY or ANTHROPIC_API_KEY (or OPENAI_BASE_URL for a local server); commands still work',
  );
  return new UnconfiguredProvider();
}

/**
 * A provider for the local OpenAI-compatible server at `localProbe.baseURL` (Ollama, vLLM), if
 * one answers; its first listed model is used.
 */
export async function findLocalProvider(
  config: Readonly<AgentConfig>,
  deps: { logger: Logger; fetch?: typeof globalThis.fetch },
): Promise<ChatProvider | undefined> {
  const model = await probeLocalServer(
    config.localProbe.baseURL,
    config.localProbe.timeoutMs,
    deps.fetch ?? fetch,
  );
  if (!model) return undefined;
  deps.logger.info({ baseURL: config.localProbe.baseURL, model }, 'using the local OpenAI-compatible server');
  return new OpenAiProvider({
    id: 'local',
    model,
    baseURL: config.localProbe.baseURL,
    // Local models on a CPU can take minutes for a long reply.
    timeoutMs: 300_000,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
}

/** Returns the first model a local OpenAI-compatible server lists, or undefined if none answers. */
async function probeLocalServer(
  baseURL: string,
  timeoutMs: number,
  fetchImpl: typeof globalThis.fetch,
): Promise<string | undefined> {
  try {
    const response = await fetchImpl(`${baseURL.replace(/\/$/, '')}/models`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) return undefined;
    const body = (await response.json()) as { data?: { id?: unknown }[] };
    const id = body.data?.find((m) => typeof m.id === 'string')?.id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
