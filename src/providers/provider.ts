/**
 * The seam between the agent and any LLM. The core only ever sees these types; the SDKs stay
 * behind the implementations in this folder.
 */
export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface ChatRequest {
  system?: string;
  messages: ChatMessage[];
  /** Upper bound for the reply; each provider has its own default. */
  maxOutputTokens?: number;
}

export interface ChatUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface ChatResult {
  text: string;
  providerId: string;
  model: string;
  usage?: ChatUsage;
}

export type ChatStreamEvent = { type: 'text'; text: string } | { type: 'done'; result: ChatResult };

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ChatProvider {
  readonly id: string;
  readonly kind: 'openai' | 'anthropic' | 'none';
  readonly model: string;
  complete(request: ChatRequest, options?: CallOptions): Promise<ChatResult>;
  /** Yields text deltas, then exactly one `done` event with the assembled result. */
  stream(request: ChatRequest, options?: CallOptions): AsyncIterable<ChatStreamEvent>;
  /** A cheap call that proves the endpoint and key work (`doctor`, health checks). */
  probe(options?: CallOptions): Promise<void>;
}
