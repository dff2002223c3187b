import type OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../../fakes/fake-anthropic.js';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import {
  agentClient,
  anthropicEntry,
  type GatewayAgent,
  openAiEntry,
  startGatewayAgent,
} from './gateway-harness.js';

/**
 * Scenario 5: a tool-call round trip through `POST /v1/chat/completions` with the real `openai`
 * SDK as the client: the model asks for a tool, the client runs it and sends the result back,
 * the model answers. Once answered by an OpenAI-format provider, once by an Anthropic-format one
 * (the OpenAI-format primary failing), plain and streamed, and once across the two.
 *
 * The fakes ask for a tool when the last user message says `use tool <name> <json>`, and answer
 * `tool said: <result>` when the conversation ends with tool results.
 */
const weatherTool: OpenAI.Chat.ChatCompletionFunctionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const ASK = 'use tool get_weather {"city":"Paris"}';
const TOOL_RESULT = 'sunny, 21 C';

let openai: FakeOpenAi;
let anthropic: FakeAnthropic;
let test: GatewayAgent;

beforeAll(async () => {
  openai = await startFakeOpenAi();
  anthropic = await startFakeAnthropic();
  test = await startGatewayAgent({
    providers: [openAiEntry('oai', openai.baseURL), anthropicEntry('claude', anthropic.baseURL)],
    // The OpenAI-format provider is made to fail on purpose below; its breaker must stay closed.
    gateway: {
      probeEveryMs: 600_000,
      breaker: { consecutiveFailures: 100, minimumCalls: 100, windowSize: 100 },
    },
  });
});
afterEach(() => {
  openai.setFault(undefined);
});
afterAll(async () => {
  await test?.stop();
  await openai?.close();
  await anthropic?.close();
});

interface Turn {
  model: string;
  finishReason: string | null;
  content: string | null;
  toolCalls: OpenAI.Chat.ChatCompletionMessageFunctionToolCall[];
}

/** One call to the agent, plain or streamed, reduced to what the round trip needs. */
async function call(messages: OpenAI.Chat.ChatCompletionMessageParam[], streamed: boolean): Promise<Turn> {
  const client = agentClient(test.url);
  if (!streamed) {
    const completion = await client.chat.completions.create({
      model: 'auto',
      messages,
      tools: [weatherTool],
    });
    const choice = completion.choices[0];
    return {
      model: completion.model,
      finishReason: choice?.finish_reason ?? null,
      content: choice?.message.content ?? null,
      toolCalls: (choice?.message.tool_calls ?? []) as OpenAI.Chat.ChatCompletionMessageFunctionToolCall[],
    };
  }
  const stream = await client.chat.completions.create({
    model: 'auto',
    messages,
    tools: [weatherTool],
    stream: true,
  });
  let model = '';
  let content: string | null = null;
  let finishReason: string | null = null;
  const calls = new Map<number, { id: string; name: string; arguments: string }>();
  for await (const chunk of stream) {
    model = chunk.model;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta.content) content = (content ?? '') + choice.delta.content;
    for (const fragment of choice.delta.tool_calls ?? []) {
      const entry = calls.get(fragment.index) ?? { id: '', name: '', arguments: '' };
      if (fragment.id) entry.id = fragment.id;
      if (fragment.function?.name) entry.name += fragment.function.name;
      if (fragment.function?.arguments) entry.arguments += fragment.function.arguments;
      calls.set(fragment.index, entry);
    }
    if (choice.finish_reason) finishReason = choice.finish_reason;
  }
  return {
    model,
    finishReason,
    content,
    toolCalls: [...calls.values()].map((c) => ({
      id: c.id,
      type: 'function',
      function: { name: c.name, arguments: c.arguments },
    })),
  };
}

/** Asks for the tool, "runs" it, sends the result back; returns both turns. */
async function roundTrip(streamed: boolean) {
  const first = await call([{ role: 'user', content: ASK }], streamed);
  expect(first.finishReason).toBe('tool_calls');
  expect(first.toolCalls).toHaveLength(1);
  const [toolCall] = first.toolCalls;
  expect(toolCall?.function.name).toBe('get_weather');
  expect(JSON.parse(toolCall?.function.arguments ?? '')).toEqual({ city: 'Paris' });
  expect(toolCall?.id).toMatch(/./);

  const second = await call(
    [
      { role: 'user', content: ASK },
      { role: 'assistant', content: first.content, tool_calls: first.toolCalls },
      { role: 'tool', tool_call_id: toolCall?.id ?? '', content: TOOL_RESULT },
    ],
    streamed,
  );
  expect(second.finishReason).toBe('stop');
  expect(second.toolCalls).toEqual([]);
  expect(second.content).toBe(`tool said: ${TOOL_RESULT}`);
  return { first, second, toolCallId: toolCall?.id ?? '' };
}

describe.each([
  ['plain', false],
  ['streamed', true],
])('tool round trip through /v1/chat/completions (%s)', (_mode, streamed) => {
  it('answered by the OpenAI-format provider', async () => {
    const anthropicHits = anthropic.chatHits;
    const { first, second, toolCallId } = await roundTrip(streamed);
    expect(first.model).toBe('oai/oai-model');
    expect(second.model).toBe('oai/oai-model');
    expect(toolCallId).toMatch(/^call_fake_/);
    expect(anthropic.chatHits).toBe(anthropicHits);

    // What the provider saw on the second call: the tools, its own call, and the result for it.
    const body = openai.requests.at(-1)?.body;
    expect(body?.stream ?? false).toBe(streamed);
    expect(body?.tools?.map((t) => t.function.name)).toEqual(['get_weather']);
    expect(body?.messages).toEqual([
      { role: 'user', content: ASK },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: toolCallId,
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: toolCallId, content: TOOL_RESULT },
    ]);
  });

  it('answered by the Anthropic-format provider', async () => {
    openai.setFault({ kind: 'status', status: 503 });
    const openaiHits = openai.chatHits;
    const { first, second, toolCallId } = await roundTrip(streamed);
    expect(first.model).toBe('claude/claude-model');
    expect(second.model).toBe('claude/claude-model');
    expect(toolCallId).toMatch(/^toolu_fake_/);
    // Both calls were tried on the OpenAI-format primary first.
    expect(openai.chatHits).toBe(openaiHits + 2);

    const body = anthropic.requests.at(-1)?.body;
    expect(body?.stream ?? false).toBe(streamed);
    expect(body?.tools?.map((t) => t.name)).toEqual(['get_weather']);
    expect(body?.messages).toEqual([
      { role: 'user', content: ASK },
      {
        role: 'assistant',
        content: [{ type: 'tool_use', id: toolCallId, name: 'get_weather', input: { city: 'Paris' } }],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolCallId, content: TOOL_RESULT }] },
    ]);
  });

  it('asked by the Anthropic-format provider, finished by the OpenAI-format one', async () => {
    openai.setFault({ kind: 'status', status: 503, times: 1 });
    const { first, second, toolCallId } = await roundTrip(streamed);
    expect(first.model).toBe('claude/claude-model');
    expect(second.model).toBe('oai/oai-model');
    expect(toolCallId).toMatch(/^toolu_fake_/);
    const body = openai.requests.at(-1)?.body;
    expect(body?.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: toolCallId, content: TOOL_RESULT });
  });
});
