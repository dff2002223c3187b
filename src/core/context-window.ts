import type { ChatMessage } from '../providers/provider.js';
import type { Turn } from './memory/memory-store.js';

export interface ContextLimits {
  maxTurns: number;
  maxTokens: number;
}

/**
 * Roughly four characters per token for English text, plus a few tokens of per-message
 * overhead. Good enough to stay inside a budget without shipping a tokenizer per model.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4) + 4;
}

/**
 * The system prompt with a person's summary of their older turns (memory compaction) appended
 * as a note, so the model reads it before the recent turns.
 */
export function withSummary(systemPrompt: string, summary: string | undefined): string {
  if (!summary) return systemPrompt;
  return `${systemPrompt}\n\n${SUMMARY_HEADING}\n${summary}`;
}

export const SUMMARY_HEADING = 'Summary of this conversation before the messages below:';

/**
 * The messages for one agent turn: the newest turns that fit both the turn limit and the token
 * budget (system prompt and new message counted first), oldest first, then the new message.
 */
export function buildContext(
  turns: readonly Turn[],
  newMessage: string,
  systemPrompt: string,
  limits: ContextLimits,
): ChatMessage[] {
  let budget = limits.maxTokens - estimateTokens(systemPrompt) - estimateTokens(newMessage);
  const kept: Turn[] = [];
  for (let i = turns.length - 1; i >= 0 && kept.length < limits.maxTurns; i -= 1) {
    const turn = turns[i] as Turn;
    const cost = estimateTokens(turn.user) + estimateTokens(turn.assistant);
    if (cost > budget) break;
    budget -= cost;
    kept.push(turn);
  }
  const messages: ChatMessage[] = [];
  for (const turn of kept.reverse()) {
    messages.push({ role: 'user', content: turn.user }, { role: 'assistant', content: turn.assistant });
  }
  messages.push({ role: 'user', content: newMessage });
  return messages;
}
