import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFakeOpenAi } from '../fakes/fake-openai.js';
import { startAgentProcess } from '../support/agent-process.js';

describe('graceful shutdown', () => {
  it('on SIGINT finishes the turn in flight, refuses new ones, stores it, and exits 0', async () => {
    const fake = await startFakeOpenAi({ delayMs: 1500 });
    const env = {
      DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-graceful-')),
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
    };
    const agent = await startAgentProcess(env);
    try {
      const inFlight = fetch(`${agent.url}/api/conversations/g/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'slow one' }),
      });
      while (fake.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
      agent.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 100));
      const refused = await fetch(`${agent.url}/api/conversations/g/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'too late' }),
      }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } } }),
        () => ({ status: 0, body: {} as { error?: { code: string } } }),
      );
      // Either the listener is already closed, or the request is refused with a clear code.
      if (refused.status !== 0) expect(refused.body.error?.code).toBe('shutting_down');

      const response = await inFlight;
      expect(response.status).toBe(200);
      expect(((await response.json()) as { reply: { text: string } }).reply.text).toBe('echo: slow one');
      expect(await agent.exited).toBe(0);

      const again = await startAgentProcess(env);
      try {
        const history = (await (await fetch(`${again.url}/api/conversations/g/messages`)).json()) as {
          turns: { user: string }[];
        };
        expect(history.turns.map((t) => t.user)).toEqual(['slow one']);
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
    } finally {
      agent.child.kill('SIGKILL');
      await fake.close();
    }
  });
});
