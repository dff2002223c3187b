import OpenAI from 'openai';
import type {
  CallOptions,
  ChatProvider,
  ChatRequest,
  ChatResult,
  ChatStreamEvent,
  ChatUsage,
  FinishReason,
  ToolCall,
  ToolDefinition,
} from './provider.js';
import { MalformedResponseError, throwIfAborted, toProviderError } from './provider-error.js';

export interface OpenAiProviderOptions {
  id: string;
  model: string;
  apiKey?: string;
  /** Any OpenAI-compatible endpoint; default OpenAI's own. */
  baseURL?: string;
  timeoutMs: number;
  fetch?: typeof globalThis.fetch;
  /**
   * The current key, asked before every request, so a rotated key (Vault) is used without
   * rebuilding the provider; when it returns undefined, `apiKey` is used.
   */
  getApiKey?: () => string | undefined;
}

/** OpenAI and every OpenAI-compatible endpoint (DeepSeek, Ollama, vLLM, OpenRouter). */
export class OpenAiProvider implements ChatProvider {
  readonly kind: 'openai' | 'azure-openai' = 'openai';
  readonly id: string;
  readonly model: string;
  private readonly clientOf: () => OpenAI;

  /**
   * `client` lets a subclass (Azure) bring its own configured SDK client, or a function giving
   * the client to use now (see `rebuildOnKeyChange`).
   */
  constructor(options: OpenAiProviderOptions, client?: OpenAI | (() => OpenAI)) {
    this.id = options.id;
    this.model = options.model;
    if (typeof client === 'function') {
      this.clientOf = client;
      return;
    }
    const { getApiKey } = options;
    // Keyless local servers still need a non-empty string for the SDK.
    const fixedKey = options.apiKey ?? 'not-needed';
    const sdk =
      client ??
      new OpenAI({
        // The SDK calls a key function before each request (openai >= 5 accepts `() => Promise<string>`).
        apiKey: getApiKey ? async () => getApiKey() ?? fixedKey : fixedKey,
        ...(options.baseURL ? { baseURL: options.baseURL } : {}),
        // The agent (and later the gateway) is the only retry loop.
        maxRetries: 0,
        timeout: options.timeoutMs,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
    this.clientOf = () => sdk;
  }

  private get client(): OpenAI {
    return this.clientOf();
  }

  async complete(request: ChatRequest, options: CallOptions = {}): Promise<ChatResult> {
    try {
      const response: unknown = await this.client.chat.completions.create(
        { ...toOpenAiParams(this.model, request), stream: false },
        { signal: options.signal },
      );
      return { ...fromOpenAiCompletion(response, this.model), providerId: this.id };
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }

  async *stream(request: ChatRequest, options: CallOptions = {}): AsyncIterable<ChatStreamEvent> {
    const accumulator = new OpenAiStreamAccumulator(this.model);
    try {
      const stream = await this.client.chat.completions.create(
        {
          ...toOpenAiParams(this.model, request),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: options.signal },
      );
      for await (const chunk of stream) {
        for (const event of accumulator.push(chunk)) yield event;
      }
      // The SDK ends an aborted stream quietly; the caller must still see the abort.
      throwIfAborted(options.signal);
      yield { type: 'done', result: { ...accumulator.finish(), providerId: this.id } };
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }

  async probe(options: CallOptions = {}): Promise<void> {
    try {
      await this.client.models.list({ signal: options.signal });
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }
}

/**
 * A client that follows a rotating key: `build` runs again whenever `key()` returns another value
 * than the client was built with, for SDK clients that take only a fixed key (AzureOpenAI sends
 * a key function as an Entra ID token, not as `api-key`).
 */
export function rebuildOnKeyChange<T>(key: () => string, build: (apiKey: string) => T): () => T {
  let built: { key: string; client: T } | undefined;
  return () => {
    const current = key();
    if (!built || built.key !== current) built = { key: current, client: build(current) };
    return built.client;
  };
}

/** The request body (without `stream`) for the unified request. */
export function toOpenAiParams(
  model: string,
  request: ChatRequest,
): Omit<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, 'stream'> {
  return {
    model,
    messages: toOpenAiMessages(request),
    ...(request.tools && request.tools.length > 0 ? { tools: toOpenAiTools(request.tools) } : {}),
    ...(request.maxOutputTokens ? { max_tokens: request.maxOutputTokens } : {}),
  };
}

export function toOpenAiMessages(request: ChatRequest): OpenAI.Chat.ChatCompletionMessageParam[] {
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [];
  if (request.system) messages.push({ role: 'system', content: request.system });
  for (const message of request.messages) {
    if (message.role === 'tool') {
      messages.push({ role: 'tool', tool_call_id: message.toolCallId, content: message.content });
    } else if (message.role === 'assistant' && message.toolCalls && message.toolCalls.length > 0) {
      messages.push({
        role: 'assistant',
        content: message.content === '' ? null : message.content,
        tool_calls: message.toolCalls.map((call) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: call.name, arguments: call.arguments },
        })),
      });
    } else {
      messages.push({ role: message.role, content: message.content });
    }
  }
  return messages;
}

export function toOpenAiTools(tools: ToolDefinition[]): OpenAI.Chat.ChatCompletionFunctionTool[] {
  return tools.map((tool) => ({
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  }));
}

export function fromOpenAiFinishReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'stop':
      return 'stop';
    case 'length':
      return 'length';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    case 'content_filter':
      return 'refusal';
    default:
      return 'other';
  }
}

function fromOpenAiUsage(usage: unknown): ChatUsage | undefined {
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | null | undefined;
  if (!u || typeof u.prompt_tokens !== 'number' || typeof u.completion_tokens !== 'number') return undefined;
  return { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens };
}

/**
 * Reads a non-streaming chat completion. Anything that is not one (a proxy's HTML page parsed as
 * text, an object without `choices`) throws `MalformedResponseError`.
 */
export function fromOpenAiCompletion(
  response: unknown,
  fallbackModel: string,
): Omit<ChatResult, 'providerId'> {
  const r = response as OpenAI.Chat.ChatCompletion | null;
  if (!r || typeof r !== 'object' || !Array.isArray(r.choices) || r.choices.length === 0) {
    throw new MalformedResponseError('the reply is not a chat completion');
  }
  const choice = r.choices[0] as OpenAI.Chat.ChatCompletion.Choice;
  const message = choice.message ?? {};
  const toolCalls: ToolCall[] = (message.tool_calls ?? []).flatMap((call) =>
    call.type === 'function' || 'function' in call
      ? [
          {
            id: call.id,
            name: (call as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function.name,
            arguments: (call as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function.arguments ?? '',
          },
        ]
      : [],
  );
  let finishReason = fromOpenAiFinishReason(choice.finish_reason);
  if (toolCalls.length > 0 && finishReason === 'stop') finishReason = 'tool_calls';
  let text = message.content ?? '';
  if (!text && message.refusal) {
    text = message.refusal;
    finishReason = 'refusal';
  }
  const usage = fromOpenAiUsage(r.usage);
  return {
    text,
    model: r.model || fallbackModel,
    finishReason,
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    ...(usage ? { usage } : {}),
  };
}

/**
 * Assembles a streamed chat completion. Tool-call fragments arrive as `delta.tool_calls` keyed
 * by `index` (id and name in the first fragment, the argument text spread over the rest); the
 * calls are emitted, complete, when the choice finishes.
 */
export class OpenAiStreamAccumulator {
  private text = '';
  private model: string;
  private usage: ChatUsage | undefined;
  private finishReason: FinishReason | undefined;
  private readonly calls = new Map<number, ToolCall>();
  private emitted = false;

  constructor(fallbackModel: string) {
    this.model = fallbackModel;
  }

  push(chunk: OpenAI.Chat.ChatCompletionChunk): ChatStreamEvent[] {
    if (!chunk || typeof chunk !== 'object')
      throw new MalformedResponseError('a stream chunk is not an object');
    const events: ChatStreamEvent[] = [];
    if (chunk.model) this.model = chunk.model;
    const usage = fromOpenAiUsage(chunk.usage);
    if (usage) this.usage = usage;
    const choice = chunk.choices?.[0];
    if (!choice) return events;
    const delta = choice.delta ?? {};
    if (delta.content) {
      this.text += delta.content;
      events.push({ type: 'text', text: delta.content });
    }
    if (delta.refusal) {
      this.text += delta.refusal;
      this.finishReason = 'refusal';
      events.push({ type: 'text', text: delta.refusal });
    }
    for (const fragment of delta.tool_calls ?? []) {
      const call = this.calls.get(fragment.index) ?? { id: '', name: '', arguments: '' };
      if (fragment.id) call.id = fragment.id;
      if (fragment.function?.name) call.name += fragment.function.name;
      if (fragment.function?.arguments) call.arguments += fragment.function.arguments;
      this.calls.set(fragment.index, call);
    }
    if (choice.finish_reason) {
      if (this.finishReason !== 'refusal') this.finishReason = fromOpenAiFinishReason(choice.finish_reason);
      events.push(...this.emitToolCalls());
    }
    return events;
  }

  /** The assembled result; throws if the stream ended before the choice finished. */
  finish(): Omit<ChatResult, 'providerId'> {
    if (this.finishReason === undefined) {
      throw new MalformedResponseError('the stream ended before the reply finished');
    }
    const toolCalls = this.toolCalls();
    if (toolCalls.length > 0 && this.finishReason === 'stop') this.finishReason = 'tool_calls';
    return {
      text: this.text,
      model: this.model,
      finishReason: this.finishReason,
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(this.usage ? { usage: this.usage } : {}),
    };
  }

  private toolCalls(): ToolCall[] {
    return [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => ({ ...call }));
  }

  private emitToolCalls(): ChatStreamEvent[] {
    if (this.emitted) return [];
    this.emitted = true;
    return this.toolCalls().map((toolCall) => ({ type: 'tool_call', toolCall }));
  }
}
