import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AnthropicRequest, type FakeAnthropic, startFakeAnthropic } from '../../fakes/fake-anthropic.js';
import { type FakeOpenAi, type RecordedRequest, startFakeOpenAi, textOf } from '../../fakes/fake-openai.js';
import { readSse } from '../../support/test-agent.js';
import {
  agentClient,
  anthropicEntry,
  type GatewayAgent,
  getStatus,
  openAiEntry,
  providerStatus,
  startGatewayAgent,
} from './gateway-harness.js';

/**
 * Scenario 4: a stream cut after its first chunks is continued by the next provider, and the
 * person gets ONE coherent reply: the partial text, then the continuation, nothing repeated.
 *
 * Both fakes "know" the same full answer. Asked normally they stream all of it; asked to continue
 * (the gateway sends the partial reply as an assistant message, then an instruction), they send
 * exactly the rest after that partial, so any duplication, loss or reordering shows in the text.
 */
const FULL = 'The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun.';
const CONTINUE = /continue it exactly where it stopped/i;

function continuation(partial: string | undefined, lastUser: string): string {
  if (!CONTINUE.test(lastUser)) return FULL;
  if (partial === undefined || !FULL.startsWith(partial)) return `<bad continuation request: ${partial}>`;
  return FULL.slice(partial.length);
}

const openAiContinuing = (body: RecordedRequest['body']) => {
  const last = body.messages.at(-1);
  const before = body.messages.at(-2);
  return continuation(
    before?.role === 'assistant' ? textOf(before.content) : undefined,
    last?.role === 'user' ? textOf(last.content) : '',
  );
};

const anthropicText = (content: AnthropicRequest['body']['messages'][number]['content'] | undefined) =>
  typeof content === 'string'
    ? content
    : (content ?? []).map((b) => (b.type === 'text' ? b.text : '')).join('');

const anthropicContinuing = (body: AnthropicRequest['body']) => {
  const last = body.messages.at(-1);
  const before = body.messages.at(-2);
  return continuation(
    before?.role === 'assistant' ? anthropicText(before.content) : undefined,
    last?.role === 'user' ? anthropicText(last.content) : '',
  );
};

let openai: FakeOpenAi;
let anthropic: FakeAnthropic;

beforeAll(async () => {
  openai = await startFakeOpenAi({ reply: openAiContinuing });
  anthropic = await startFakeAnthropic({ reply: anthropicContinuing });
});
afterEach(() => {
  openai.setFault(undefined);
  anthropic.setFault(undefined);
});
afterAll(async () => {
  await openai?.close();
  await anthropic?.close();
});

describe('a stream cut after its first chunk', () => {
  describe('OpenAI-format primary, Anthropic-format secondary, via the OpenAI-compatible API', () => {
    let test: GatewayAgent;
    beforeAll(async () => {
      test = await startGatewayAgent({
        providers: [openAiEntry('primary', openai.baseURL), anthropicEntry('secondary', anthropic.baseURL)],
        gateway: { probeEveryMs: 600_000 },
      });
    });
    afterAll(async () => {
      await test?.stop();
    });

    it('yields the partial text plus the continuation, once', async () => {
      // The OpenAI fake streams 8-character chunks: "The quic" reaches the agent, then the socket dies.
      openai.setFault({ kind: 'cut_stream', afterChunks: 1, times: 1 });
      const stream = await agentClient(test.url).chat.completions.create({
        model: 'auto',
        messages: [{ role: 'user', content: 'tell me about the fox' }],
        stream: true,
      });
      const pieces: string[] = [];
      const finishReasons: string[] = [];
      let model = '';
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (choice?.delta?.content) pieces.push(choice.delta.content);
        if (choice?.finish_reason) finishReasons.push(choice.finish_reason);
        model = chunk.model;
      }
      expect(pieces[0]).toBe('The quic');
      expect(pieces.join('')).toBe(FULL);
      expect(finishReasons).toEqual(['stop']);
      expect(model).toBe('secondary/secondary-model');

      // What the secondary was asked: the conversation, the partial reply, then "continue".
      expect(openai.requests.at(-1)?.fault).toBe('cut_stream');
      const asked = anthropic.requests.at(-1)?.body;
      expect(asked?.stream).toBe(true);
      expect(asked?.messages.slice(0, 2)).toEqual([
        { role: 'user', content: 'tell me about the fox' },
        { role: 'assistant', content: 'The quic' },
      ]);
      expect(anthropicText(asked?.messages[2]?.content)).toMatch(CONTINUE);
      expect((await providerStatus(test.url, 'primary')).errors).toEqual({ connection: 1 });
    });
  });

  describe('Anthropic-format primary, OpenAI-format secondary, via the streaming JSON API', () => {
    let test: GatewayAgent;
    beforeAll(async () => {
      test = await startGatewayAgent({
        providers: [anthropicEntry('primary', anthropic.baseURL), openAiEntry('secondary', openai.baseURL)],
        gateway: { probeEveryMs: 600_000 },
      });
    });
    afterAll(async () => {
      await test?.stop();
    });

    it('streams one reply and stores it whole, once', async () => {
      // The Anthropic fake streams 6-character deltas: "The qu" and "ick br", then the socket dies.
      anthropic.setFault({ kind: 'cut_stream', afterChunks: 2, times: 1 });
      const response = await fetch(`${test.url}/api/conversations/fox/messages/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'tell me about the fox' }),
      });
      expect(response.status).toBe(200);
      const events = await readSse(response);
      const deltas = events.filter((e) => e.event === 'delta').map((e) => e.data.text as string);
      expect(deltas.slice(0, 2)).toEqual(['The qu', 'ick br']);
      expect(deltas.join('')).toBe(FULL);
      expect(events.at(-1)).toMatchObject({ event: 'done', data: { reply: { text: FULL } } });
      expect(events.some((e) => e.event === 'error')).toBe(false);

      const asked = openai.requests.at(-1)?.body;
      expect(asked?.messages.at(-2)).toEqual({ role: 'assistant', content: 'The quick br' });

      // Memory holds the one coherent reply.
      const history = (await (await fetch(`${test.url}/api/conversations/fox/messages`)).json()) as any;
      expect(history.turns).toEqual([
        expect.objectContaining({ user: 'tell me about the fox', assistant: FULL }),
      ]);

      // The cost ledger counts the call that answered (the cut one was released).
      const costs = (await getStatus(test.url)).costs;
      expect(costs.providers.secondary?.dayRequests).toBe(1);
      expect(costs.providers.primary?.dayRequests ?? 0).toBe(0);
    });
  });
});
