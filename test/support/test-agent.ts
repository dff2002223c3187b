import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/core/config/load-config.js';
import { type Agent, createAgent } from '../../src/core/create-agent.js';

export interface TestAgent {
  agent: Agent;
  url: string;
  dataDir: string;
}

/** Builds and starts a real agent in this process from environment-style config. */
export async function startTestAgent(env: Record<string, string> = {}): Promise<TestAgent> {
  const dataDir = env.DATA_DIR ?? mkdtempSync(join(tmpdir(), 'agent-data-'));
  const config = loadConfig({
    env: { HTTP_PORT: '0', LOCAL_LLM_PROBE: 'false', LOG_LEVEL: 'silent', DATA_DIR: dataDir, ...env },
    cwd: dataDir,
  });
  const agent = await createAgent(config);
  const url = await agent.start();
  return { agent, url, dataDir };
}

export async function postMessage(
  url: string,
  conversationId: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}/api/conversations/${conversationId}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** Reads an SSE response into its events. */
export async function readSse(response: Response): Promise<{ event: string; data: any }[]> {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.trim().length > 0)
    .map((block) => ({
      event: /^event: (.*)$/m.exec(block)?.[1] ?? '',
      data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null'),
    }));
}
