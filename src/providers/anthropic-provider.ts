import Anthropic from '@anthropic-ai/sdk';
import type {
  CallOptions,
  ChatProvider,
  ChatRequest,
  ChatResult,
  ChatStreamEvent,
  FinishReason,
  ToolCall,
  ToolDefinition,
} from './provider.js';
import { MalformedResponseError, throwIfAborted, toProviderError } from './provider-error.js';

export interface AnthropicProviderOptions {
  id: string;
  model: string;
  apiKey: string;
  /** Without `/v1`; default Anthropic's own API. */
  baseURL?: string;
  maxOutputTokens: number;
  timeoutMs: number;
  fetch?: typeof globalThis.fetch;
  /**
   * The current key, asked before every request, so a rotated key (Vault) is used without
   * rebuilding the provider; when it returns undefined, `apiKey` is used.
   */
  getApiKey?: () => string | undefined;
}

export class AnthropicProvider implements ChatProvider {
  readonly kind = 'anthropic' as const;
  readonly id: string;
  readonly model: string;
  private readonly client: Anthropic;
  private readonly maxOutputTokens: number;

  constructor(options: AnthropicProviderOptions) {
    this.id = options.id;
    this.model = options.model;
    this.maxOutputTokens = options.maxOutputTokens;
    const { getApiKey, apiKey } = options;
    this.client = new Anthropic({
      // The SDK calls a key function before each request (@anthropic-ai/sdk accepts `() => Promise<string>`).
      apiKey: getApiKey ? async () => getApiKey() ?? apiKey : apiKey,
      ...(options.baseURL ? { baseURL: options.baseURL } : {}),
      maxRetries: 0,
      timeout: options.timeoutMs,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  async complete(request: ChatRequest, options: CallOptions = {}): Promise<ChatResult> {
    try {
      const response: unknown = await this.client.messages.create(
        toAnthropicParams(this.model, this.maxOutputTokens, request),
        { signal: options.signal },
      );
      return { ...fromAnthropicMessage(response, this.model), providerId: this.id };
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }

  async *stream(request: ChatRequest, options: CallOptions = {}): AsyncIterable<ChatStreamEvent> {
    const accumulator = new AnthropicStreamAccumulator(this.model);
    try {
      const stream = await this.client.messages.create(
        { ...toAnthropicParams(this.model, this.maxOutputTokens, request), stream: true },
        { signal: options.signal },
      );
      for await (const event of stream) {
        for (const out of accumulator.push(event)) yield out;
      }
      throwIfAborted(options.signal);
      yield { type: 'done', result: { ...accumulator.finish(), providerId: this.id } };
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }

  async probe(options: CallOptions = {}): Promise<void> {
    try {
      await this.client.models.list({ limit: 1 }, { signal: options.signal });
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }
}

export function toAnthropicParams(
  model: string,
  defaultMaxTokens: number,
  request: ChatRequest,
): Anthropic.MessageCreateParamsNonStreaming {
  return {
    model,
    max_tokens: request.maxOutputTokens ?? defaultMaxTokens,
    ...(request.system ? { system: request.system } : {}),
    messages: toAnthropicMessages(request),
    ...(request.tools && request.tools.length > 0 ? { tools: toAnthropicTools(request.tools) } : {}),
  };
}

type Block = Anthropic.ContentBlockParam;

/**
 * Maps the unified history onto Messages API turns. Tool calls become `tool_use` blocks of the
 * assistant turn; tool results become `tool_result` blocks of ONE user turn (consecutive results
 * are merged, and a user text that follows them joins the same turn, after them).
 */
export function toAnthropicMessages(request: ChatRequest): Anthropic.MessageParam[] {
  const messages: Anthropic.MessageParam[] = [];
  /** The user turn that holds tool results, while more may be appended to it. */
  let resultsTurn: { role: 'user'; content: Block[] } | undefined;
  for (const message of request.messages) {
    if (message.role === 'tool') {
      if (!resultsTurn) {
        resultsTurn = { role: 'user', content: [] };
        messages.push(resultsTurn);
      }
      resultsTurn.content.push({
        type: 'tool_result',
        tool_use_id: message.toolCallId,
        content: message.content,
      });
      continue;
    }
    if (message.role === 'user') {
      if (resultsTurn) {
        if (message.content) resultsTurn.content.push({ type: 'text', text: message.content });
      } else {
        messages.push({ role: 'user', content: message.content });
      }
      resultsTurn = undefined;
      continue;
    }
    resultsTurn = undefined;
    if (message.toolCalls && message.toolCalls.length > 0) {
      const content: Block[] = [];
      if (message.content) content.push({ type: 'text', text: message.content });
      for (const call of message.toolCalls) {
        content.push({
          type: 'tool_use',
          id: call.id,
          name: call.name,
          input: parseToolInput(call.arguments),
        });
      }
      messages.push({ role: 'assistant', content });
    } else {
      messages.push({ role: 'assistant', content: message.content });
    }
  }
  return messages;
}

/** Anthropic wants the arguments as an object; empty or unparsable text becomes `{}`. */
export function parseToolInput(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

export function toAnthropicTools(tools: ToolDefinition[]): Anthropic.Tool[] {
  return tools.map((tool) => ({
    name: tool.name,
    description: tool.description,
    input_schema: { type: 'object', ...tool.parameters } as Anthropic.Tool.InputSchema,
  }));
}

export function fromAnthropicStopReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'refusal';
    default:
      return 'other';
  }
}

/** Reads a non-streaming Messages API reply; anything else throws `MalformedResponseError`. */
export function fromAnthropicMessage(
  response: unknown,
  fallbackModel: string,
): Omit<ChatResult, 'providerId'> {
  const r = response as Anthropic.Message | null;
  if (!r || typeof r !== 'object' || !Array.isArray(r.content)) {
    throw new MalformedResponseError('the reply is not a Messages API message');
  }
  let text = '';
  const toolCalls: ToolCall[] = [];
  for (const block of r.content) {
    if (block.type === 'text') text += block.text;
    else if (block.type === 'tool_use')
      toolCalls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input ?? {}) });
  }
  return {
    text,
    model: r.model || fallbackModel,
    finishReason: fromAnthropicStopReason(r.stop_reason),
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    ...(r.usage ? { usage: { inputTokens: r.usage.input_tokens, outputTokens: r.usage.output_tokens } } : {}),
  };
}

/**
 * Assembles a streamed Messages API reply. A `tool_use` block starts with its id and name; its
 * input arrives as `input_json_delta` fragments and the call is emitted at `content_block_stop`.
 */
export class AnthropicStreamAccumulator {
  private text = '';
  private model: string;
  private inputTokens = 0;
  private outputTokens = 0;
  private stopReason: string | null | undefined;
  private readonly open = new Map<number, ToolCall & { initial: string }>();
  private readonly toolCalls: ToolCall[] = [];

  constructor(fallbackModel: string) {
    this.model = fallbackModel;
  }

  push(event: Anthropic.RawMessageStreamEvent): ChatStreamEvent[] {
    if (!event || typeof event !== 'object')
      throw new MalformedResponseError('a stream event is not an object');
    switch (event.type) {
      case 'message_start':
        this.model = event.message.model || this.model;
        this.inputTokens = event.message.usage?.input_tokens ?? 0;
        this.outputTokens = event.message.usage?.output_tokens ?? 0;
        return [];
      case 'content_block_start': {
        const block = event.content_block;
        if (block.type === 'tool_use') {
          const initial =
            block.input && Object.keys(block.input).length > 0 ? JSON.stringify(block.input) : '';
          this.open.set(event.index, { id: block.id, name: block.name, arguments: '', initial });
        } else if (block.type === 'text' && block.text) {
          this.text += block.text;
          return [{ type: 'text', text: block.text }];
        }
        return [];
      }
      case 'content_block_delta': {
        if (event.delta.type === 'text_delta') {
          this.text += event.delta.text;
          return [{ type: 'text', text: event.delta.text }];
        }
        if (event.delta.type === 'input_json_delta') {
          const call = this.open.get(event.index);
          if (call) call.arguments += event.delta.partial_json;
        }
        return [];
      }
      case 'content_block_stop': {
        const call = this.open.get(event.index);
        if (!call) return [];
        this.open.delete(event.index);
        const toolCall: ToolCall = {
          id: call.id,
          name: call.name,
          arguments: call.arguments || call.initial || '{}',
        };
        this.toolCalls.push(toolCall);
        return [{ type: 'tool_call', toolCall }];
      }
      case 'message_delta':
        if (event.delta.stop_reason) this.stopReason = event.delta.stop_reason;
        if (typeof event.usage?.output_tokens === 'number') this.outputTokens = event.usage.output_tokens;
        if (typeof event.usage?.input_tokens === 'number') this.inputTokens = event.usage.input_tokens;
        return [];
      default:
        return [];
    }
  }

  /** The assembled result; throws if the stream ended before the message said why it stopped. */
  finish(): Omit<ChatResult, 'providerId'> {
    if (!this.stopReason) throw new MalformedResponseError('the stream ended before the reply finished');
    return {
      text: this.text,
      model: this.model,
      finishReason: fromAnthropicStopReason(this.stopReason),
      ...(this.toolCalls.length > 0 ? { toolCalls: [...this.toolCalls] } : {}),
      usage: { inputTokens: this.inputTokens, outputTokens: this.outputTokens },
    };
  }
}
