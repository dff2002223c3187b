import type Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import {
  AnthropicStreamAccumulator,
  fromAnthropicMessage,
  fromAnthropicStopReason,
  parseToolInput,
  toAnthropicMessages,
  toAnthropicParams,
  toAnthropicTools,
} from '../../../src/providers/anthropic-provider.js';
import type { ChatStreamEvent } from '../../../src/providers/provider.js';
import { classifyProviderError } from '../../../src/providers/provider-error.js';

const tool = {
  name: 'lookup',
  description: 'Looks up',
  parameters: { type: 'object', properties: { q: {} } },
};

describe('toAnthropicMessages', () => {
  it('keeps plain turns as strings', () => {
    expect(
      toAnthropicMessages({
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
      }),
    ).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
    ]);
  });

  it('turns tool calls into tool_use blocks and merges consecutive results into one user turn', () => {
    expect(
      toAnthropicMessages({
        messages: [
          { role: 'user', content: 'q' },
          {
            role: 'assistant',
            content: '',
            toolCalls: [
              { id: 't1', name: 'lookup', arguments: '{"q":1}' },
              { id: 't2', name: 'lookup', arguments: '' },
            ],
          },
          { role: 'tool', toolCallId: 't1', content: 'one' },
          { role: 'tool', toolCallId: 't2', content: 'two' },
          { role: 'user', content: 'and?' },
          { role: 'assistant', content: 'done' },
          { role: 'user', content: 'thanks' },
        ],
      }),
    ).toEqual([
      { role: 'user', content: 'q' },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: 't1', name: 'lookup', input: { q: 1 } },
          { type: 'tool_use', id: 't2', name: 'lookup', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 't1', content: 'one' },
          { type: 'tool_result', tool_use_id: 't2', content: 'two' },
          { type: 'text', text: 'and?' },
        ],
      },
      { role: 'assistant', content: 'done' },
      { role: 'user', content: 'thanks' },
    ]);
  });

  it('parses tool input to an object, whatever the text', () => {
    expect(parseToolInput('{"a":[1]}')).toEqual({ a: [1] });
    expect(parseToolInput('')).toEqual({});
    expect(parseToolInput('not json')).toEqual({});
    expect(parseToolInput('[1,2]')).toEqual({});
  });

  it('builds params with system, tools and the default max_tokens', () => {
    expect(toAnthropicParams('claude', 1024, { system: 's', messages: [], tools: [tool] })).toEqual({
      model: 'claude',
      max_tokens: 1024,
      system: 's',
      messages: [],
      tools: [{ name: 'lookup', description: 'Looks up', input_schema: tool.parameters }],
    });
    expect(toAnthropicParams('claude', 1024, { messages: [], maxOutputTokens: 10 })).toEqual({
      model: 'claude',
      max_tokens: 10,
      messages: [],
    });
    expect(toAnthropicTools([{ ...tool, parameters: { properties: {} } }])[0]?.input_schema).toEqual({
      type: 'object',
      properties: {},
    });
  });
});

describe('fromAnthropicStopReason', () => {
  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['tool_use', 'tool_calls'],
    ['refusal', 'refusal'],
    ['pause_turn', 'other'],
    [null, 'other'],
  ])('%s -> %s', (reason, expected) => {
    expect(fromAnthropicStopReason(reason)).toBe(expected);
  });
});

describe('fromAnthropicMessage', () => {
  it('reads text and tool_use blocks', () => {
    expect(
      fromAnthropicMessage(
        {
          id: 'm',
          type: 'message',
          role: 'assistant',
          model: 'claude-x',
          content: [
            { type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: 'x' } },
          ],
          stop_reason: 'tool_use',
          usage: { input_tokens: 12, output_tokens: 4 },
        },
        'fallback',
      ),
    ).toEqual({
      text: 'Checking.',
      model: 'claude-x',
      finishReason: 'tool_calls',
      toolCalls: [{ id: 'toolu_1', name: 'lookup', arguments: '{"q":"x"}' }],
      usage: { inputTokens: 12, outputTokens: 4 },
    });
  });

  it('anything else is malformed', () => {
    expect(() => fromAnthropicMessage('<html></html>', 'f')).toThrow();
    try {
      fromAnthropicMessage({ type: 'message' }, 'f');
    } catch (error) {
      expect(classifyProviderError(error).failure).toBe('malformed');
    }
  });
});

describe('AnthropicStreamAccumulator', () => {
  const ev = (e: Record<string, unknown>) => e as unknown as Anthropic.RawMessageStreamEvent;

  it('emits text deltas, and each tool call at its content_block_stop', () => {
    const acc = new AnthropicStreamAccumulator('fallback');
    const events: ChatStreamEvent[] = [];
    const push = (e: Record<string, unknown>) => events.push(...acc.push(ev(e)));
    push({
      type: 'message_start',
      message: { model: 'claude-x', usage: { input_tokens: 20, output_tokens: 1 } },
    });
    push({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    push({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'On it.' } });
    push({ type: 'content_block_stop', index: 0 });
    push({
      type: 'content_block_start',
      index: 1,
      content_block: { type: 'tool_use', id: 'tu1', name: 'lookup', input: {} },
    });
    push({
      type: 'content_block_delta',
      index: 1,
      delta: { type: 'input_json_delta', partial_json: '{"q":' },
    });
    expect(events.some((e) => e.type === 'tool_call')).toBe(false);
    push({
      type: 'content_block_delta',
      index: 1,
      delta: { type: 'input_json_delta', partial_json: '"x"}' },
    });
    push({ type: 'content_block_stop', index: 1 });
    push({
      type: 'content_block_start',
      index: 2,
      content_block: { type: 'tool_use', id: 'tu2', name: 'noargs', input: {} },
    });
    push({ type: 'content_block_stop', index: 2 });
    push({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 30 } });
    push({ type: 'message_stop' });

    expect(events).toEqual([
      { type: 'text', text: 'On it.' },
      { type: 'tool_call', toolCall: { id: 'tu1', name: 'lookup', arguments: '{"q":"x"}' } },
      { type: 'tool_call', toolCall: { id: 'tu2', name: 'noargs', arguments: '{}' } },
    ]);
    expect(acc.finish()).toEqual({
      text: 'On it.',
      model: 'claude-x',
      finishReason: 'tool_calls',
      toolCalls: [
        { id: 'tu1', name: 'lookup', arguments: '{"q":"x"}' },
        { id: 'tu2', name: 'noargs', arguments: '{}' },
      ],
      usage: { inputTokens: 20, outputTokens: 30 },
    });
  });

  it('a stream without a stop reason is malformed', () => {
    const acc = new AnthropicStreamAccumulator('f');
    acc.push(ev({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'half' } }));
    expect(() => acc.finish()).toThrow(/ended before/);
  });
});
