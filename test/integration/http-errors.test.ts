import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { type AgentProcess, MAIN_JS, startAgentProcess } from '../support/agent-process.js';

const TOKEN = 'test-token-0123456789abcdef';

describe('the HTTP API refuses bad requests with JSON errors and stays up', () => {
  let fake: FakeOpenAi;
  let agent: AgentProcess;
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${agent.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers },
      body,
    });

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    agent = await startAgentProcess({
      DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-errors-')),
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
      HTTP_AUTH_TOKENS: TOKEN,
      LOG_LEVEL: 'info',
    });
  });
  afterAll(async () => {
    agent.child.kill('SIGTERM');
    await agent.exited;
    await fake.close();
  });

  const cases: { name: string; send: () => Promise<Response>; status: number; code: string }[] = [
    {
      name: 'an oversized body',
      send: () => post('/api/conversations/c/messages', JSON.stringify({ text: 'x'.repeat(70_000) })),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'a missing token',
      send: () => post('/api/conversations/c/messages', '{"text":"hi"}', { authorization: '' }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'a wrong token',
      send: () =>
        post('/api/conversations/c/messages', '{"text":"hi"}', {
          authorization: 'Bearer wrong-token-0123456789',
        }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'malformed JSON',
      send: () => post('/api/conversations/c/messages', '{"text": "hi'),
      status: 400,
      code: 'invalid_json',
    },
    {
      name: 'a body of the wrong shape',
      send: () => post('/api/conversations/c/messages', '{"txt":"hi"}'),
      status: 400,
      code: 'bad_request',
    },
    {
      name: 'a bad conversation id',
      send: () => post('/api/conversations/bad%20id!/messages', '{"text":"hi"}'),
      status: 400,
      code: 'bad_request',
    },
    {
      name: 'a wrong content type',
      send: () => post('/api/conversations/c/messages', 'text=hi', { 'content-type': 'text/plain' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    { name: 'an unknown route', send: () => fetch(`${agent.url}/nope`), status: 404, code: 'not_found' },
  ];

  it.each(cases)('$name -> $status $code', async ({ send, status, code }) => {
    const response = await send();
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toContain('application/json');
    const body = await response.json();
    expect(body).toEqual({ error: { code, message: expect.any(String) } });
  });

  it('is still up and answering after all of them', async () => {
    expect(agent.child.exitCode).toBeNull();
    const response = await post('/api/conversations/c/messages', '{"text":"still there?"}');
    expect(response.status).toBe(200);
    expect(((await response.json()) as { reply: { text: string } }).reply.text).toBe('echo: still there?');
  });

  it('never writes the token to its log', () => {
    expect(agent.output.join('\n')).not.toContain(TOKEN);
  });
});

describe('start-up refusals', () => {
  it('refuses to bind a public address without tokens, naming the key and the fix, before doing anything', () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'agent-refuse-')), 'data');
    const result = spawnSync(process.execPath, [MAIN_JS, 'start'], {
      env: {
        PATH: process.env.PATH ?? '',
        HTTP_HOST: '0.0.0.0',
        DATA_DIR: dataDir,
        LOCAL_LLM_PROBE: 'false',
      },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toMatch(
      /http\.authTokens[\s\S]*not a loopback address[\s\S]*fix: set HTTP_AUTH_TOKENS/,
    );
    expect(spawnSync('test', ['-e', dataDir]).status).toBe(1);
  });
});

describe('without a provider', () => {
  it('starts, says so, and replies with the variable to set', async () => {
    const agent = await startAgentProcess({ DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-none-')) });
    try {
      expect(agent.output.join('\n')).toMatch(/no LLM provider configured: set OPENAI_API_KEY/);
      const response = await fetch(`${agent.url}/api/conversations/c/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"text":"hello"}',
      });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('provider_not_configured');
      expect(body.error.message).toMatch(/Set OPENAI_API_KEY \(or ANTHROPIC_API_KEY\)/);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });
});
