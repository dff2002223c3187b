import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { postMessage, readSse, startTestAgent, type TestAgent } from '../support/test-agent.js';

describe('a conversation over the HTTP API through the openai SDK', () => {
  let fake: FakeOpenAi;
  let test: TestAgent;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    test = await startTestAgent({
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_API_KEY: 'sk-test-conversation-key',
      OPENAI_MODEL: 'fake-model',
      SYSTEM_PROMPT: 'You are a test agent.',
    });
  });
  afterAll(async () => {
    await test.agent.stop();
    await fake.close();
  });

  it('answers a plain turn, and carries it as context into the next', async () => {
    const first = await postMessage(test.url, 'conv-plain', { text: 'my name is Ada' });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      conversationId: 'conv-plain',
      reply: { text: 'echo: my name is Ada' },
      duplicate: false,
    });

    const second = await postMessage(test.url, 'conv-plain', { text: 'what is my name?' });
    expect(second.body.reply.text).toBe('echo: what is my name?');

    const request = fake.requests.at(-1);
    expect(request?.headers.authorization).toBe('Bearer sk-test-conversation-key');
    expect(request?.body.model).toBe('fake-model');
    expect(request?.body.messages).toEqual([
      { role: 'system', content: 'You are a test agent.' },
      { role: 'user', content: 'my name is Ada' },
      { role: 'assistant', content: 'echo: my name is Ada' },
      { role: 'user', content: 'what is my name?' },
    ]);
  });

  it('streams a turn as server-sent events, and carries it as context into the next', async () => {
    const response = await fetch(`${test.url}/api/conversations/conv-stream/messages/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'stream this reply please' }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const events = await readSse(response);
    const deltas = events.filter((e) => e.event === 'delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((e) => e.data.text).join('')).toBe('echo: stream this reply please');
    expect(events.at(-1)).toMatchObject({
      event: 'done',
      data: { reply: { text: 'echo: stream this reply please' } },
    });
    expect(fake.requests.at(-1)?.body.stream).toBe(true);

    const next = await fetch(`${test.url}/api/conversations/conv-stream/messages/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'and again' }),
    });
    await readSse(next);
    expect(fake.requests.at(-1)?.body.messages.slice(1)).toEqual([
      { role: 'user', content: 'stream this reply please' },
      { role: 'assistant', content: 'echo: stream this reply please' },
      { role: 'user', content: 'and again' },
    ]);
  });

  it('answers an event id once; a retry gets the same reply without a second provider call', async () => {
    const before = fake.requests.length;
    const first = await postMessage(test.url, 'conv-idem', { text: 'once', eventId: 'evt-1' });
    const retry = await postMessage(test.url, 'conv-idem', { text: 'once', eventId: 'evt-1' });
    expect(first.body.duplicate).toBe(false);
    expect(retry.body).toMatchObject({ duplicate: true, reply: { text: 'echo: once' } });
    expect(fake.requests.length - before).toBe(1);
    const history = (await (await fetch(`${test.url}/api/conversations/conv-idem/messages`)).json()) as {
      turns: unknown[];
    };
    expect(history.turns).toHaveLength(1);
  });

  it('runs commands without calling the provider, and /reset starts a fresh context', async () => {
    await postMessage(test.url, 'conv-reset', { text: 'remember this' });
    const before = fake.requests.length;
    const status = await postMessage(test.url, 'conv-reset', { text: '/status' });
    expect(status.body.reply.text).toMatch(
      /providers: openai \(fake-model\) healthy[\s\S]*memory: local append-only log/,
    );
    const reset = await postMessage(test.url, 'conv-reset', { text: '/reset' });
    expect(reset.body.reply.text).toMatch(/Context cleared/);
    expect(fake.requests.length).toBe(before);
    await postMessage(test.url, 'conv-reset', { text: 'fresh start' });
    expect(fake.requests.at(-1)?.body.messages.slice(1)).toEqual([{ role: 'user', content: 'fresh start' }]);
  });

  it('reports health and readiness', async () => {
    expect(await (await fetch(`${test.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${test.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      checks: { memory: 'log: ok', providers: '1/1 healthy' },
    });
  });
});
