import Anthropic from '@anthropic-ai/sdk';
import type { CallOptions, ChatProvider, ChatRequest, ChatResult, ChatStreamEvent } from './provider.js';
import { toProviderError } from './provider-error.js';

export interface AnthropicProviderOptions {
  id: string;
  model: string;
  apiKey: string;
  /** Without `/v1`; default Anthropic's own API. */
  baseURL?: string;
  maxOutputTokens: number;
  timeoutMs: number;
  fetch?: typeof globalThis.fetch;
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
    this.client = new Anthropic({
      apiKey: options.apiKey,
      ...(options.baseURL ? { baseURL: options.baseURL } : {}),
      maxRetries: 0,
      timeout: options.timeoutMs,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  async complete(request: ChatRequest, options: CallOptions = {}): Promise<ChatResult> {
    try {
      const response = await this.client.messages.create(this.params(request), { signal: options.signal });
      const text = response.content.map((block) => (block.type === 'text' ? block.text : '')).join('');
      return {
        text,
        providerId: this.id,
        model: response.model || this.model,
        usage: { inputTokens: response.usage.input_tokens, outputTokens: response.usage.output_tokens },
      };
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }

  async *stream(request: ChatRequest, options: CallOptions = {}): AsyncIterable<ChatStreamEvent> {
    let text = '';
    let model = this.model;
    let inputTokens = 0;
    let outputTokens = 0;
    try {
      const stream = await this.client.messages.create(
        { ...this.params(request), stream: true },
        { signal: options.signal },
      );
      for await (const event of stream) {
        if (event.type === 'message_start') {
          model = event.message.model || model;
          inputTokens = event.message.usage.input_tokens;
        } else if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
          text += event.delta.text;
          yield { type: 'text', text: event.delta.text };
        } else if (event.type === 'message_delta') {
          outputTokens = event.usage.output_tokens;
        }
      }
    } catch (error) {
      throw toProviderError(this.id, error);
    }
    yield {
      type: 'done',
      result: { text, providerId: this.id, model, usage: { inputTokens, outputTokens } },
    };
  }

  async probe(options: CallOptions = {}): Promise<void> {
    try {
      await this.client.models.list({ limit: 1 }, { signal: options.signal });
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }

  private params(request: ChatRequest): Anthropic.MessageCreateParamsNonStreaming {
    return {
      model: this.model,
      max_tokens: request.maxOutputTokens ?? this.maxOutputTokens,
      ...(request.system ? { system: request.system } : {}),
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
    };
  }
}
