import type { Logger } from 'pino';

/**
 * The seam between the agent and any LLM. The core and the gateway only ever see these types;
 * the SDKs stay behind the implementations in this folder. One shape covers both wire formats
 * (OpenAI `tools`/`tool_calls`, Anthropic `tool_use`/`tool_result`), so tools work whichever
 * provider answers.
 */
export interface ToolDefinition {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface ToolCall {
  id: string;
  name: string;
  /** The arguments as JSON text, exactly as the model produced them. */
  arguments: string;
}

export type ChatMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; content: string };

export interface ChatRequest {
  system?: string;
  messages: ChatMessage[];
  /** Upper bound for the reply; each provider has its own default. */
  maxOutputTokens?: number;
  tools?: ToolDefinition[];
}

export interface ChatUsage {
  inputTokens: number;
  outputTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'refusal' | 'other';

export interface ChatResult {
  text: string;
  providerId: string;
  model: string;
  finishReason: FinishReason;
  toolCalls?: ToolCall[];
  usage?: ChatUsage;
}

export type ChatStreamEvent =
  | { type: 'text'; text: string }
  /** Emitted once a tool call is complete (name and all argument text received). */
  | { type: 'tool_call'; toolCall: ToolCall }
  | { type: 'done'; result: ChatResult };

export interface CallOptions {
  signal?: AbortSignal;
  /**
   * Who the call is for, so the gateway can charge budgets and the cost ledger; `logger` is the
   * turn's logger (carrying its `turn` id), for the gateway's lines about this call.
   */
  meta?: { personId?: string; channel?: string; logger?: Logger };
  /**
   * With it, the gateway returns as soon as the provider answered and pushes the settling of the
   * call's cost here instead of waiting for it; the caller must await them before it answers, so a
   * settled cost still precedes the reply. Lets a turn settle and store its reply in one Redis
   * round trip instead of two.
   */
  settlements?: Promise<void>[];
}

export type ProviderKind = 'openai' | 'azure-openai' | 'anthropic' | 'gateway' | 'none';

export interface ChatProvider {
  readonly id: string;
  readonly kind: ProviderKind;
  readonly model: string;
  complete(request: ChatRequest, options?: CallOptions): Promise<ChatResult>;
  /** Yields text deltas and completed tool calls, then exactly one `done` with the assembled result. */
  stream(request: ChatRequest, options?: CallOptions): AsyncIterable<ChatStreamEvent>;
  /** A cheap call that proves the endpoint and key work (`doctor`, health probes). */
  probe(options?: CallOptions): Promise<void>;
}
