import type { ChatRequest } from '../provider.js';

export const CONTINUE_INSTRUCTION =
  'Your previous reply was cut off by a network failure. Continue it exactly where it stopped: ' +
  'do not repeat anything already written, do not apologise or mention the interruption, and ' +
  'start with the very next characters.';

/**
 * When a stream dies after partial output, the next provider gets the conversation plus the
 * partial reply as an assistant message and an instruction to continue it. The person sees one
 * reply: the partial text already shown, then the continuation. Models follow this well, but a
 * continuation can still differ in style from the first provider's start.
 */
export function continuationRequest(request: ChatRequest, partialText: string): ChatRequest {
  return {
    ...request,
    messages: [
      ...request.messages,
      { role: 'assistant', content: partialText },
      { role: 'user', content: CONTINUE_INSTRUCTION },
    ],
  };
}

/** Drops the older half of the history (never the newest message), for a prompt too long for every model. */
export function trimRequest(request: ChatRequest): ChatRequest | undefined {
  if (request.messages.length <= 1) return undefined;
  const keep = Math.max(1, Math.floor(request.messages.length / 2));
  let messages = request.messages.slice(-keep);
  // A tool result must not lose the assistant message that asked for it.
  while (messages.length > 1 && messages[0]?.role === 'tool') messages = messages.slice(1);
  return { ...request, messages };
}
