import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import {
  fromOpenAiCompletion,
  fromOpenAiFinishReason,
  OpenAiStreamAccumulator,
  toOpenAiMessages,
  toOpenAiParams,
  toOpenAiTools,
} from '../../../src/providers/openai-provider.js';
import type { ChatStreamEvent } from '../../../src/providers/provider.js';
import { classifyProviderError } from '../../../src/providers/provider-error.js';

const tool = { name: 'lookup', description: 'Looks up', parameters: { type: 'object', properties: {} } };

describe('toOpenAiMessages', () => {
  it('maps system, plain turns, tool calls and tool results', () => {
    expect(
      toOpenAiMessages({
        system: 'sys',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'lookup', arguments: '{"q":1}' }] },
          { role: 'tool', toolCallId: 'c1', content: 'found' },
          {
            role: 'assistant',
            content: 'thinking',
            toolCalls: [{ id: 'c2', name: 'lookup', arguments: '{}' }],
          },
        ],
      }),
    ).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"q":1}' } }],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'found' },
      {
        role: 'assistant',
        content: 'thinking',
        tool_calls: [{ id: 'c2', type: 'function', function: { name: 'lookup', arguments: '{}' } }],
      },
    ]);
  });

  it('leaves tools and max_tokens out when not asked for', () => {
    expect(toOpenAiParams('m', { messages: [{ role: 'user', content: 'x' }], tools: [] })).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(toOpenAiParams('m', { messages: [], tools: [tool], maxOutputTokens: 50 })).toMatchObject({
      tools: toOpenAiTools([tool]),
      max_tokens: 50,
    });
    expect(toOpenAiTools([tool])).toEqual([
      {
        type: 'function',
        function: { name: 'lookup', description: 'Looks up', parameters: tool.parameters },
      },
    ]);
  });
});

describe('fromOpenAiFinishReason', () => {
  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool_calls', 'tool_calls'],
    ['function_call', 'tool_calls'],
    ['content_filter', 'refusal'],
    [null, 'other'],
    ['something_new', 'other'],
  ])('%s -> %s', (reason, expected) => {
    expect(fromOpenAiFinishReason(reason)).toBe(expected);
  });
});

describe('fromOpenAiCompletion', () => {
  const completion = (message: Record<string, unknown>, finish: string) =>
    ({
      id: 'x',
      object: 'chat.completion',
      created: 0,
      model: 'gpt-x',
      choices: [
        { index: 0, message: { role: 'assistant', ...message }, finish_reason: finish, logprobs: null },
      ],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    }) as unknown;

  it('reads text, usage and model', () => {
    expect(fromOpenAiCompletion(completion({ content: 'hi' }, 'stop'), 'fallback')).toEqual({
      text: 'hi',
      model: 'gpt-x',
      finishReason: 'stop',
      usage: { inputTokens: 7, outputTokens: 3 },
    });
  });

  it('reads tool calls', () => {
    const result = fromOpenAiCompletion(
      completion(
        {
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } },
          ],
        },
        'tool_calls',
      ),
      'fallback',
    );
    expect(result).toMatchObject({
      text: '',
      finishReason: 'tool_calls',
      toolCalls: [{ id: 'call_1', name: 'lookup', arguments: '{"q":"x"}' }],
    });
  });

  it('reads a refusal', () => {
    expect(
      fromOpenAiCompletion(completion({ content: null, refusal: 'I cannot help' }, 'stop'), 'f'),
    ).toMatchObject({
      text: 'I cannot help',
      finishReason: 'refusal',
    });
  });

  it.each([['<html>proxy error</html>'], [{}], [null], [{ choices: [] }]])('%o is malformed', (body) => {
    let caught: unknown;
    try {
      fromOpenAiCompletion(body, 'f');
    } catch (error) {
      caught = error;
    }
    expect(classifyProviderError(caught).failure).toBe('malformed');
  });
});

describe('OpenAiStreamAccumulator', () => {
  const chunk = (
    delta: Record<string, unknown>,
    finish: string | null = null,
    extra: Record<string, unknown> = {},
  ) =>
    ({
      id: 'x',
      object: 'chat.completion.chunk',
      created: 0,
      model: 'gpt-x',
      choices: [{ index: 0, delta, finish_reason: finish }],
      ...extra,
    }) as unknown as OpenAI.Chat.ChatCompletionChunk;

  it('accumulates parallel tool-call fragments by index and emits them at finish', () => {
    const acc = new OpenAiStreamAccumulator('fallback');
    const events: ChatStreamEvent[] = [];
    const push = (c: OpenAI.Chat.ChatCompletionChunk) => events.push(...acc.push(c));
    push(chunk({ role: 'assistant', content: 'Let me ' }));
    push(chunk({ content: 'check.' }));
    push(
      chunk({
        tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'look', arguments: '' } }],
      }),
    );
    push(
      chunk({
        tool_calls: [
          { index: 1, id: 'call_b', type: 'function', function: { name: 'lookup', arguments: '{"q"' } },
        ],
      }),
    );
    push(chunk({ tool_calls: [{ index: 0, function: { name: 'up', arguments: '{"q":' } }] }));
    push(chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }));
    push(chunk({ tool_calls: [{ index: 1, function: { arguments: ':2}' } }] }));
    expect(events.filter((e) => e.type === 'tool_call')).toEqual([]);
    push(chunk({}, 'tool_calls'));
    push({ ...chunk({}), choices: [], usage: { prompt_tokens: 4, completion_tokens: 9, total_tokens: 13 } });

    expect(events).toEqual([
      { type: 'text', text: 'Let me ' },
      { type: 'text', text: 'check.' },
      { type: 'tool_call', toolCall: { id: 'call_a', name: 'lookup', arguments: '{"q":1}' } },
      { type: 'tool_call', toolCall: { id: 'call_b', name: 'lookup', arguments: '{"q":2}' } },
    ]);
    expect(acc.finish()).toEqual({
      text: 'Let me check.',
      model: 'gpt-x',
      finishReason: 'tool_calls',
      toolCalls: [
        { id: 'call_a', name: 'lookup', arguments: '{"q":1}' },
        { id: 'call_b', name: 'lookup', arguments: '{"q":2}' },
      ],
      usage: { inputTokens: 4, outputTokens: 9 },
    });
  });

  it('maps length and content_filter', () => {
    const acc = new OpenAiStreamAccumulator('f');
    acc.push(chunk({ content: 'abc' }, 'length'));
    expect(acc.finish().finishReason).toBe('length');
    const filtered = new OpenAiStreamAccumulator('f');
    filtered.push(chunk({}, 'content_filter'));
    expect(filtered.finish().finishReason).toBe('refusal');
  });

  it('a stream without a finish reason is malformed', () => {
    const acc = new OpenAiStreamAccumulator('f');
    acc.push(chunk({ content: 'half a rep' }));
    expect(() => acc.finish()).toThrow(/ended before/);
    try {
      acc.finish();
    } catch (error) {
      expect(classifyProviderError(error).failure).toBe('malformed');
    }
  });
});
