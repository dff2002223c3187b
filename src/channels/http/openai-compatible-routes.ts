import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AgentError } from '../../core/errors.js';
import type {
  ChatMessage,
  ChatProvider,
  ChatRequest,
  ChatResult,
  ToolCall,
} from '../../providers/provider.js';
import { toErrorResponse } from './error-handler.js';

const textContent = z.union([
  z.string(),
  z
    .array(z.object({ type: z.literal('text'), text: z.string() }).loose())
    .transform((parts) => parts.map((p) => p.text).join('')),
]);
const toolCallSchema = z
  .object({
    id: z.string(),
    type: z.literal('function').optional(),
    function: z.object({ name: z.string(), arguments: z.string() }).loose(),
  })
  .loose();
const messageSchema = z.discriminatedUnion('role', [
  z.object({ role: z.enum(['system', 'developer']), content: textContent }).loose(),
  z.object({ role: z.literal('user'), content: textContent }).loose(),
  z
    .object({
      role: z.literal('assistant'),
      content: textContent.nullish(),
      tool_calls: z.array(toolCallSchema).optional(),
    })
    .loose(),
  z.object({ role: z.literal('tool'), tool_call_id: z.string(), content: textContent }).loose(),
]);
/** OpenAI's request body; fields the gateway does not use (temperature...) are accepted and ignored. */
const completionBody = z
  .object({
    model: z.string().min(1),
    messages: z.array(messageSchema).min(1),
    stream: z.boolean().optional(),
    max_tokens: z.number().int().positive().optional(),
    max_completion_tokens: z.number().int().positive().optional(),
    tools: z
      .array(
        z
          .object({
            type: z.literal('function'),
            function: z
              .object({
                name: z.string(),
                description: z.string().default(''),
                parameters: z.record(z.string(), z.unknown()).default({}),
              })
              .loose(),
          })
          .loose(),
      )
      .optional(),
  })
  .loose();

/**
 * `POST /v1/chat/completions`, so any OpenAI client can use the redundant gateway. It speaks
 * OpenAI's wire format whichever provider answers, tool calls included.
 */
export function registerOpenAiCompatibleRoutes(api: FastifyInstance, gateway: () => ChatProvider): void {
  api.post('/v1/chat/completions', async (request, reply) => {
    const parsed = completionBody.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AgentError(
        'bad_request',
        `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`,
      );
    }
    const body = parsed.data;
    const chatRequest = toChatRequest(body);
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    if (!body.stream) {
      const result = await gateway().complete(chatRequest, { meta: { channel: 'openai-api' } });
      return toCompletion(id, created, result);
    }
    return streamCompletion(reply, gateway(), chatRequest, id, created);
  });
}

function toChatRequest(body: z.infer<typeof completionBody>): ChatRequest {
  const system: string[] = [];
  const messages: ChatMessage[] = [];
  for (const m of body.messages) {
    if (m.role === 'system' || m.role === 'developer') system.push(m.content);
    else if (m.role === 'user') messages.push({ role: 'user', content: m.content });
    else if (m.role === 'tool')
      messages.push({ role: 'tool', toolCallId: m.tool_call_id, content: m.content });
    else {
      const wire = m.tool_calls as z.infer<typeof toolCallSchema>[] | undefined;
      const toolCalls: ToolCall[] | undefined = wire?.map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: c.function.arguments,
      }));
      messages.push({
        role: 'assistant',
        content: m.content ?? '',
        ...(toolCalls?.length ? { toolCalls } : {}),
      });
    }
  }
  const maxOutputTokens = body.max_completion_tokens ?? body.max_tokens;
  return {
    ...(system.length ? { system: system.join('\n\n') } : {}),
    messages,
    ...(maxOutputTokens ? { maxOutputTokens } : {}),
    ...(body.tools?.length
      ? {
          tools: body.tools.map((t) => ({
            name: t.function.name,
            description: t.function.description,
            parameters: t.function.parameters,
          })),
        }
      : {}),
  };
}

const FINISH_REASONS: Record<ChatResult['finishReason'], string> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  refusal: 'content_filter',
  other: 'stop',
};

function wireToolCalls(calls: ToolCall[]) {
  return calls.map((c) => ({
    id: c.id,
    type: 'function' as const,
    function: { name: c.name, arguments: c.arguments },
  }));
}

function toCompletion(id: string, created: number, result: ChatResult) {
  return {
    id,
    object: 'chat.completion',
    created,
    model: `${result.providerId}/${result.model}`,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: result.text || (result.toolCalls?.length ? null : ''),
          ...(result.toolCalls?.length ? { tool_calls: wireToolCalls(result.toolCalls) } : {}),
        },
        finish_reason: FINISH_REASONS[result.finishReason],
      },
    ],
    ...(result.usage
      ? {
          usage: {
            prompt_tokens: result.usage.inputTokens,
            completion_tokens: result.usage.outputTokens,
            total_tokens: result.usage.inputTokens + result.usage.outputTokens,
          },
        }
      : {}),
  };
}

async function streamCompletion(
  reply: FastifyReply,
  gateway: ChatProvider,
  request: ChatRequest,
  id: string,
  created: number,
): Promise<void> {
  const abort = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  reply.hijack();
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
  });
  let model = 'gateway/auto';
  const chunk = (
    delta: Record<string, unknown>,
    finishReason: string | null,
    extra: Record<string, unknown> = {},
  ) =>
    reply.raw.write(
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra })}\n\n`,
    );
  let toolIndex = 0;
  try {
    chunk({ role: 'assistant', content: '' }, null);
    for await (const event of gateway.stream(request, {
      signal: abort.signal,
      meta: { channel: 'openai-api' },
    })) {
      if (event.type === 'text') chunk({ content: event.text }, null);
      else if (event.type === 'tool_call') {
        chunk({ tool_calls: [{ index: toolIndex, ...wireToolCalls([event.toolCall])[0] }] }, null);
        toolIndex += 1;
      } else {
        model = `${event.result.providerId}/${event.result.model}`;
        chunk({}, FINISH_REASONS[event.result.finishReason]);
        if (event.result.usage) {
          reply.raw.write(
            `data: ${JSON.stringify({
              id,
              object: 'chat.completion.chunk',
              created,
              model,
              choices: [],
              usage: {
                prompt_tokens: event.result.usage.inputTokens,
                completion_tokens: event.result.usage.outputTokens,
                total_tokens: event.result.usage.inputTokens + event.result.usage.outputTokens,
              },
            })}\n\n`,
          );
        }
      }
    }
    reply.raw.write('data: [DONE]\n\n');
  } catch (error) {
    // Headers are sent: the error travels in the stream, as OpenAI's own API does.
    reply.raw.write(`data: ${JSON.stringify(toErrorResponse(error).body)}\n\n`);
  }
  reply.raw.end();
}
