import { AgentError } from '../core/errors.js';
import type { ChatProvider, ChatResult, ChatStreamEvent } from './provider.js';

export const NO_PROVIDER_MESSAGE =
  'No LLM provider is configured. Set OPENAI_API_KEY (or ANTHROPIC_API_KEY) and restart the agent; ' +
  'for a local OpenAI-compatible server such as Ollama, set OPENAI_BASE_URL (e.g. http://127.0.0.1:11434/v1) ' +
  'and OPENAI_MODEL.';

/** Stands in when nothing is configured, so commands still work and replies say what to set. */
export class UnconfiguredProvider implements ChatProvider {
  readonly id = 'none';
  readonly kind = 'none' as const;
  readonly model = 'none';

  async complete(): Promise<ChatResult> {
    throw new AgentError('provider_not_configured', NO_PROVIDER_MESSAGE);
  }

  // biome-ignore lint/correctness/useYield: it never yields; it only explains what to configure.
  async *stream(): AsyncIterable<ChatStreamEvent> {
    throw new AgentError('provider_not_configured', NO_PROVIDER_MESSAGE);
  }

  async probe(): Promise<void> {
    throw new AgentError('provider_not_configured', NO_PROVIDER_MESSAGE);
  }
}
