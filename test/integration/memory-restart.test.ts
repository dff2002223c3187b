import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { postMessage, startTestAgent } from '../support/test-agent.js';

describe.each([
  { backend: 'log', label: 'local append-only log' },
  { backend: 'redis', label: 'Redis' },
])('memory survives a restart ($backend)', ({ backend, label }) => {
  let fake: FakeOpenAi;
  let redis: TestRedis | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'agent-restart-'));

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    if (backend === 'redis') redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
    await fake.close();
  });

  const env = () => ({
    DATA_DIR: dataDir,
    OPENAI_BASE_URL: fake.baseURL,
    OPENAI_MODEL: 'fake-model',
    ...(redis ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'restart-test' } : {}),
  });

  it(`keeps every turn and uses it as context after the agent${backend === 'redis' ? ' and Redis' : ''} restart`, async () => {
    const first = await startTestAgent(env());
    for (const text of ['one', 'two', 'three']) {
      const { body } = await postMessage(first.url, 'restart', { text, eventId: `e-${text}` });
      expect(body.reply.text).toBe(`echo: ${text}`);
    }
    const status = await postMessage(first.url, 'restart', { text: '/status' });
    expect(status.body.reply.text).toContain(label);
    await first.agent.stop();
    await redis?.restart();

    const second = await startTestAgent(env());
    try {
      const history = (await (await fetch(`${second.url}/api/conversations/restart/messages`)).json()) as {
        turns: { user: string; assistant: string }[];
      };
      expect(history.turns.map((t) => [t.user, t.assistant])).toEqual([
        ['one', 'echo: one'],
        ['two', 'echo: two'],
        ['three', 'echo: three'],
      ]);
      // A retried event from before the restart is still answered once.
      const before = fake.requests.length;
      const retry = await postMessage(second.url, 'restart', { text: 'two', eventId: 'e-two' });
      expect(retry.body).toMatchObject({ duplicate: true, reply: { text: 'echo: two' } });
      expect(fake.requests.length).toBe(before);

      await postMessage(second.url, 'restart', { text: 'four' });
      expect(
        fake.requests
          .at(-1)
          ?.body.messages.slice(1)
          .map((m) => m.content),
      ).toEqual(['one', 'echo: one', 'two', 'echo: two', 'three', 'echo: three', 'four']);
    } finally {
      await second.agent.stop();
    }
  });
});

describe('two agents on one Redis share memory', () => {
  it('answers on either agent with the same conversation', async () => {
    const fake = await startFakeOpenAi();
    const redis = await startRedis();
    const env = { OPENAI_BASE_URL: fake.baseURL, OPENAI_MODEL: 'fake-model', REDIS_URL: redis.url };
    const a = await startTestAgent(env);
    const b = await startTestAgent(env);
    try {
      await postMessage(a.url, 'shared', { text: 'hello from a' });
      await postMessage(b.url, 'shared', { text: 'hello from b' });
      expect(
        fake.requests
          .at(-1)
          ?.body.messages.slice(1)
          .map((m) => m.content),
      ).toEqual(['hello from a', 'echo: hello from a', 'hello from b']);
      // The same event id sent to the other agent is answered once across both.
      await postMessage(a.url, 'shared', { text: 'x', eventId: 'cross-1' });
      const again = await postMessage(b.url, 'shared', { text: 'x', eventId: 'cross-1' });
      expect(again.body.duplicate).toBe(true);
    } finally {
      await a.agent.stop();
      await b.agent.stop();
      await redis.stop();
      await fake.close();
    }
  });
});
