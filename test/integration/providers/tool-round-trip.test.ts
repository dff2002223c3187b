import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../../src/providers/provider.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../fakes/fake-anthropic.js';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import {
  AZURE_API_VERSION,
  AZURE_DEPLOYMENT,
  AZURE_KEY,
  type Flavour,
  failureOf,
  makeProvider,
  run,
  weatherTool,
} from './provider-harness.js';

let openai: FakeOpenAi;
let anthropic: FakeAnthropic;

beforeAll(async () => {
  openai = await startFakeOpenAi({ azureKey: AZURE_KEY, azureDeployments: [AZURE_DEPLOYMENT] });
  anthropic = await startFakeAnthropic();
});
afterAll(async () => {
  await openai.close();
  await anthropic.close();
});

const flavours: Flavour[] = ['openai', 'azure-openai', 'anthropic'];

describe.each(flavours)('a tool-call round trip through %s', (flavour) => {
  it.each([false, true])(
    'streaming=%s: tools -> tool call -> tool result -> final text',
    async (streaming) => {
      const provider = makeProvider(flavour, { openai, anthropic });
      const ask: ChatMessage = { role: 'user', content: 'use tool get_weather {"city":"Paris"}' };

      const first = await run(
        provider,
        { system: 'Use tools.', messages: [ask], tools: [weatherTool] },
        streaming,
      );
      expect(first.result.finishReason).toBe('tool_calls');
      expect(first.result.providerId).toBe(provider.id);
      const [call] = first.result.toolCalls ?? [];
      expect(call?.name).toBe('get_weather');
      expect(call?.id).toMatch(/./);
      expect(JSON.parse(call?.arguments ?? '')).toEqual({ city: 'Paris' });
      expect(first.result.usage?.inputTokens).toBeGreaterThan(0);
      if (streaming) {
        expect(first.toolCallEvents).toEqual(first.result.toolCalls);
        expect(first.order.at(-1)).toBe('done');
        expect(first.order.indexOf('tool_call')).toBeLessThan(first.order.indexOf('done'));
      }

      const second = await run(
        provider,
        {
          system: 'Use tools.',
          messages: [
            ask,
            { role: 'assistant', content: '', toolCalls: first.result.toolCalls ?? [] },
            { role: 'tool', toolCallId: call?.id ?? '', content: 'sunny, 21 C' },
          ],
          tools: [weatherTool],
        },
        streaming,
      );
      expect(second.result.text).toBe('tool said: sunny, 21 C');
      expect(second.result.finishReason).toBe('stop');
      expect(second.result.toolCalls).toBeUndefined();
      if (streaming) expect(second.texts.join('')).toBe('tool said: sunny, 21 C');

      // What went over the wire for the second call.
      if (flavour === 'anthropic') {
        const body = anthropic.requests.at(-1)?.body;
        expect(body?.system).toBe('Use tools.');
        expect(body?.tools).toEqual([
          { name: 'get_weather', description: weatherTool.description, input_schema: weatherTool.parameters },
        ]);
        expect(body?.messages).toEqual([
          { role: 'user', content: ask.content },
          {
            role: 'assistant',
            content: [{ type: 'tool_use', id: call?.id, name: 'get_weather', input: { city: 'Paris' } }],
          },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: call?.id, content: 'sunny, 21 C' }] },
        ]);
      } else {
        const request = openai.requests.at(-1);
        expect(request?.body.tools).toEqual([
          {
            type: 'function',
            function: {
              name: 'get_weather',
              description: weatherTool.description,
              parameters: weatherTool.parameters,
            },
          },
        ]);
        expect(request?.body.messages).toEqual([
          { role: 'system', content: 'Use tools.' },
          { role: 'user', content: ask.content },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: call?.id,
                type: 'function',
                function: { name: 'get_weather', arguments: call?.arguments },
              },
            ],
          },
          { role: 'tool', tool_call_id: call?.id, content: 'sunny, 21 C' },
        ]);
        if (flavour === 'azure-openai') {
          expect(request?.path).toBe(`/openai/deployments/${AZURE_DEPLOYMENT}/chat/completions`);
          expect(request?.apiVersion).toBe(AZURE_API_VERSION);
          expect(request?.headers['api-key']).toBe(AZURE_KEY);
          expect(request?.headers.authorization).toBeUndefined();
        } else {
          expect(request?.path).toBe('/v1/chat/completions');
        }
      }
    },
  );
});

describe('Anthropic tool results', () => {
  it('merges consecutive tool results, and a following user text, into one user turn', async () => {
    const provider = makeProvider('anthropic', { openai, anthropic });
    const result = await provider.complete({
      messages: [
        { role: 'user', content: 'weather in Paris and Rome?' },
        {
          role: 'assistant',
          content: 'Looking both up.',
          toolCalls: [
            { id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
            { id: 'toolu_2', name: 'get_weather', arguments: '{"city":"Rome"}' },
          ],
        },
        { role: 'tool', toolCallId: 'toolu_1', content: 'sunny' },
        { role: 'tool', toolCallId: 'toolu_2', content: 'rain' },
      ],
      tools: [weatherTool],
    });
    expect(result.text).toBe('tool said: sunny | tool said: rain');
    const messages = anthropic.requests.at(-1)?.body.messages;
    expect(messages).toHaveLength(3);
    expect(messages?.[1]).toEqual({
      role: 'assistant',
      content: [
        { type: 'text', text: 'Looking both up.' },
        { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
        { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Rome' } },
      ],
    });
    expect(messages?.[2]).toEqual({
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' },
        { type: 'tool_result', tool_use_id: 'toolu_2', content: 'rain' },
      ],
    });
  });
});

describe('Azure OpenAI', () => {
  it('probes the resource, and a wrong key or deployment is classified', async () => {
    await makeProvider('azure-openai', { openai, anthropic }).probe();
    const wrongKey = makeProvider('azure-openai', { openai, anthropic }, { apiKey: 'wrong-key' });
    expect(await failureOf(wrongKey.complete({ messages: [{ role: 'user', content: 'hi' }] }))).toMatchObject(
      {
        failure: 'unauthorized',
        status: 401,
      },
    );
    const wrongDeployment = makeProvider('azure-openai', { openai, anthropic }, { deployment: 'missing' });
    expect(
      await failureOf(wrongDeployment.complete({ messages: [{ role: 'user', content: 'hi' }] })),
    ).toMatchObject({ failure: 'bad_request', status: 404, code: 'DeploymentNotFound' });
  });

  it('reports the configured model, defaulting to the deployment', async () => {
    const named = makeProvider('azure-openai', { openai, anthropic });
    expect(named).toMatchObject({ kind: 'azure-openai', model: 'gpt-4o' });
    const unnamed = makeProvider('azure-openai', { openai, anthropic }, { model: undefined });
    expect(unnamed.model).toBe(AZURE_DEPLOYMENT);
    const result = await unnamed.complete({ messages: [{ role: 'user', content: 'hello' }] });
    expect(result).toMatchObject({ text: 'echo: hello', finishReason: 'stop', providerId: 'azure' });
  });
});
