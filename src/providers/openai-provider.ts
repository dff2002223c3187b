import OpenAI from 'openai';
import type { CallOptions, ChatProvider, ChatRequest, ChatResult, ChatStreamEvent } from './provider.js';
import { toProviderError } from './provider-error.js';

export interface OpenAiProviderOptions {
  id: string;
  model: string;
  apiKey?: string;
  /** Any OpenAI-compatible endpoint; default OpenAI's own. */
  baseURL?: string;
  timeoutMs: number;
  fetch?: typeof globalThis.fetch;
}

/** OpenAI and every OpenAI-compatible endpoint (DeepSeek, Ollama, vLLM, OpenRouter). */
export class OpenAiProvider implements ChatProvider {
  readonly kind = 'openai' as const;
  readonly id: string;
  readonly model: string;
  private readonly client: OpenAI;

  constructor(options: OpenAiProviderOptions) {
    this.id = options.id;
    this.model = options.model;
    this.client = new OpenAI({
      // Keyless local servers still need a non-empty string for the SDK.
      apiKey: options.apiKey ?? 'not-needed',
      ...(options.baseURL ? { baseURL: options.baseURL } : {}),
      // The agent (and later the gateway) is the only retry loop.
      maxRetries: 0,
      timeout: options.timeoutMs,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  async complete(request: ChatRequest, options: CallOptions = {}): Promise<ChatResult> {
    try {
      const response = await this.client.chat.completions.create(
        {
          model: this.model,
          messages: toOpenAiMessages(request),
          ...(request.maxOutputTokens ? { max_tokens: request.maxOutputTokens } : {}),
        },
        { signal: options.signal },
      );
      const text = response.choices[0]?.message?.content ?? '';
      return {
        text,
        providerId: this.id,
        model: response.model || this.model,
        ...(response.usage
          ? {
              usage: {
                inputTokens: response.usage.prompt_tokens,
                outputTokens: response.usage.completion_tokens,
              },
            }
          : {}),
      };
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }

  async *stream(request: ChatRequest, options: CallOptions = {}): AsyncIterable<ChatStreamEvent> {
    let text = '';
    let model = this.model;
    let usage: ChatResult['usage'];
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.model,
          messages: toOpenAiMessages(request),
          stream: true,
          stream_options: { include_usage: true },
          ...(request.maxOutputTokens ? { max_tokens: request.maxOutputTokens } : {}),
        },
        { signal: options.signal },
      );
      for await (const chunk of stream) {
        if (chunk.model) model = chunk.model;
        if (chunk.usage)
          usage = { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
        const delta = chunk.choices[0]?.delta?.content;
        if (delta) {
          text += delta;
          yield { type: 'text', text: delta };
        }
      }
    } catch (error) {
      throw toProviderError(this.id, error);
    }
    yield { type: 'done', result: { text, providerId: this.id, model, ...(usage ? { usage } : {}) } };
  }

  async probe(options: CallOptions = {}): Promise<void> {
    try {
      await this.client.models.list({ signal: options.signal });
    } catch (error) {
      throw toProviderError(this.id, error);
    }
  }
}

function toOpenAiMessages(request: ChatRequest): OpenAI.Chat.ChatCompletionMessageParam[] {
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [];
  if (request.system) messages.push({ role: 'system', content: request.system });
  for (const message of request.messages) messages.push({ role: message.role, content: message.content });
  return messages;
}
