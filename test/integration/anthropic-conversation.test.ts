import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../fakes/fake-anthropic.js';
import { postMessage, readSse, startTestAgent, type TestAgent } from '../support/test-agent.js';

describe('a conversation through @anthropic-ai/sdk', () => {
  let fake: FakeAnthropic;
  let test: TestAgent;

  beforeAll(async () => {
    fake = await startFakeAnthropic();
    test = await startTestAgent({
      ANTHROPIC_API_KEY: 'sk-ant-test-key-123',
      ANTHROPIC_BASE_URL: fake.baseURL,
      ANTHROPIC_MODEL: 'claude-fake',
      SYSTEM_PROMPT: 'Be brief.',
    });
  });
  afterAll(async () => {
    await test.agent.stop();
    await fake.close();
  });

  it('answers plain and streamed turns, with the system prompt apart and the first turn as context', async () => {
    const first = await postMessage(test.url, 'claude', { text: 'hi there' });
    expect(first.body.reply.text).toBe('claude echo: hi there');
    const request = fake.requests.at(-1);
    // SDK 1.x sends the key as a bearer token; older ones used x-api-key.
    const sentKey =
      request?.headers['x-api-key'] ?? String(request?.headers.authorization).replace(/^Bearer /, '');
    expect(sentKey).toBe('sk-ant-test-key-123');
    expect(request?.body).toMatchObject({ model: 'claude-fake', max_tokens: 1024, system: 'Be brief.' });

    const response = await fetch(`${test.url}/api/conversations/claude/messages/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'and now?' }),
    });
    const events = await readSse(response);
    expect(
      events
        .filter((e) => e.event === 'delta')
        .map((e) => e.data.text)
        .join(''),
    ).toBe('claude echo: and now?');
    expect(events.at(-1)?.data.reply.text).toBe('claude echo: and now?');
    expect(fake.requests.at(-1)?.body.messages).toEqual([
      { role: 'user', content: 'hi there' },
      { role: 'assistant', content: 'claude echo: hi there' },
      { role: 'user', content: 'and now?' },
    ]);
  });
});
