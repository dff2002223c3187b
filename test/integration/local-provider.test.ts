import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFakeOpenAi } from '../fakes/fake-openai.js';
import { freePort } from '../support/free-port.js';
import { postMessage, startTestAgent } from '../support/test-agent.js';

describe('with no provider configured, a local OpenAI-compatible server is used', () => {
  it('uses a server that answers at start, with its first listed model and no key', async () => {
    const fake = await startFakeOpenAi();
    const test = await startTestAgent({ LOCAL_LLM_PROBE: 'true', LOCAL_LLM_BASE_URL: fake.baseURL });
    try {
      const { status, body } = await postMessage(test.url, 'local', { text: 'hello local' });
      expect(status).toBe(200);
      expect(body.reply.text).toBe('echo: hello local');
      expect(fake.requests.at(-1)?.body.model).toBe('fake-model');
    } finally {
      await test.agent.stop();
      await fake.close();
    }
  });

  it('picks up a server that starts after the agent', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'agent-local-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ localProbe: { everyMs: 1000, timeoutMs: 200 } }),
    );
    const test = await startTestAgent({
      LOCAL_LLM_PROBE: 'true',
      LOCAL_LLM_BASE_URL: `http://127.0.0.1:${port}/v1`,
      AGENT_CONFIG: join(dir, 'config.json'),
    });
    const fake = await startFakeOpenAi({ port }).catch(async (error) => {
      await test.agent.stop();
      throw error;
    });
    try {
      const before = await postMessage(test.url, 'late', { text: 'anyone?' });
      expect([200, 503]).toContain(before.status);
      const deadline = Date.now() + 10_000;
      let answer = before;
      while (answer.status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        answer = await postMessage(test.url, 'late', { text: 'anyone?' });
      }
      expect(answer.status).toBe(200);
      expect(answer.body.reply.text).toBe('echo: anyone?');
    } finally {
      await test.agent.stop();
      await fake.close();
    }
  });
});
