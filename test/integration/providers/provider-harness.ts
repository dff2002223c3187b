import { providerSchema } from '../../../src/core/config/schema.js';
import { createProvider } from '../../../src/providers/create-provider.js';
import type {
  ChatProvider,
  ChatRequest,
  ChatResult,
  ToolCall,
  ToolDefinition,
} from '../../../src/providers/provider.js';
import {
  classifyProviderError,
  type ProviderErrorClassification,
} from '../../../src/providers/provider-error.js';
import type { FakeAnthropic } from '../../fakes/fake-anthropic.js';
import type { FakeOpenAi } from '../../fakes/fake-openai.js';

export type Flavour = 'openai' | 'azure-openai' | 'anthropic';

export const AZURE_KEY = 'azure-test-key-123';
export const AZURE_DEPLOYMENT = 'gpt4o-prod';
export const AZURE_API_VERSION = '2024-10-21';

/** A provider of that flavour, built from config the way the agent builds it, against the fakes. */
export function makeProvider(
  flavour: Flavour,
  fakes: { openai: FakeOpenAi; anthropic: FakeAnthropic },
  overrides: Record<string, unknown> = {},
): ChatProvider {
  const raw =
    flavour === 'openai'
      ? { id: 'oai', kind: 'openai', apiKey: 'sk-test', baseURL: fakes.openai.baseURL, model: 'fake-model' }
      : flavour === 'azure-openai'
        ? {
            id: 'azure',
            kind: 'azure-openai',
            endpoint: fakes.openai.azureEndpoint,
            apiVersion: AZURE_API_VERSION,
            deployment: AZURE_DEPLOYMENT,
            apiKey: AZURE_KEY,
            model: 'gpt-4o',
          }
        : {
            id: 'claude',
            kind: 'anthropic',
            apiKey: 'sk-ant-test',
            baseURL: fakes.anthropic.baseURL,
            model: 'claude-fake',
          };
  return createProvider(providerSchema.parse({ ...raw, timeoutMs: 5000, ...overrides }));
}

export interface Collected {
  result: ChatResult;
  texts: string[];
  toolCallEvents: ToolCall[];
  /** Event types in order, e.g. ['text', 'text', 'done']. */
  order: string[];
}

/** Runs a request plainly or streamed; a streamed run also returns the events seen. */
export async function run(
  provider: ChatProvider,
  request: ChatRequest,
  streaming: boolean,
  options: { signal?: AbortSignal; seen?: string[] } = {},
): Promise<Collected> {
  if (!streaming) {
    const result = await provider.complete(request, options);
    return { result, texts: [], toolCallEvents: [], order: [] };
  }
  const texts: string[] = [];
  const toolCallEvents: ToolCall[] = [];
  const order: string[] = [];
  let result: ChatResult | undefined;
  for await (const event of provider.stream(request, options)) {
    order.push(event.type);
    if (event.type === 'text') {
      texts.push(event.text);
      options.seen?.push(event.text);
    } else if (event.type === 'tool_call') toolCallEvents.push(event.toolCall);
    else result = event.result;
  }
  if (!result) throw new Error('the stream ended without done');
  return { result, texts, toolCallEvents, order };
}

/** The classified failure of a run that must fail. */
export async function failureOf(promise: Promise<unknown>): Promise<ProviderErrorClassification> {
  try {
    await promise;
  } catch (error) {
    return classifyProviderError(error);
  }
  throw new Error('expected the call to fail');
}

export const weatherTool: ToolDefinition = {
  name: 'get_weather',
  description: 'The current weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
  },
};
