import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { loadConfig } from '../../../src/core/config/load-config.js';
import { type Agent, createAgent } from '../../../src/core/create-agent.js';
import { createLogger } from '../../../src/core/logger.js';
import type { AnthropicRequest } from '../../fakes/fake-anthropic.js';
import { type RecordedRequest, textOf } from '../../fakes/fake-openai.js';

/**
 * End-to-end gateway tests: a real agent (config file, env overrides, HTTP channel, gateway, real
 * SDKs) against the local fake providers, driven over HTTP only. This file holds what the tests
 * share: starting an agent from a config object with its log captured, reading `/api/status`,
 * and tagging each fake's replies so a test can tell which provider answered.
 */

export interface LogLine {
  level: number;
  msg: string;
  provider?: string;
  [key: string]: unknown;
}

export interface GatewayAgent {
  agent: Agent;
  url: string;
  /** Every log line the agent wrote, parsed. */
  logs: LogLine[];
  stop(): Promise<void>;
}

/** Writes `config` as a JSON file in a fresh directory and returns its path. */
export function writeConfigFile(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'agent-gw-config-'));
  const path = join(dir, 'agent.config.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/**
 * Starts a real agent in this process from a config file (`AGENT_CONFIG`) plus environment
 * overrides, exactly as `main.ts` loads it, with its log captured at `info`.
 */
export async function startGatewayAgent(
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<GatewayAgent> {
  const dataDir = mkdtempSync(join(tmpdir(), 'agent-gw-data-'));
  const loaded = loadConfig({
    env: {
      HTTP_PORT: '0',
      LOCAL_LLM_PROBE: 'false',
      DATA_DIR: dataDir,
      AGENT_CONFIG: writeConfigFile(config),
      ...env,
    },
    cwd: dataDir,
  });
  const logs: LogLine[] = [];
  const logger = createLogger({
    level: 'info',
    secrets: [],
    destination: {
      write(line: string) {
        logs.push(JSON.parse(line) as LogLine);
      },
    },
  });
  const agent = await createAgent(loaded, { logger });
  const url = await agent.start();
  return { agent, url, logs, stop: () => agent.stop() };
}

export interface ProviderView {
  id: string;
  kind: string;
  model: string;
  breaker: string;
  cooldownUntil?: number;
  disabled?: string;
  requests: number;
  errors: Record<string, number>;
  lastError?: { failure: string; message: string };
}

export async function getStatus(url: string): Promise<any> {
  const response = await fetch(`${url}/api/status`);
  if (response.status !== 200) throw new Error(`/api/status answered ${response.status}`);
  return response.json();
}

/** One provider's entry in `GET /api/status`. */
export async function providerStatus(url: string, id: string): Promise<ProviderView> {
  const status = await getStatus(url);
  const found = (status.providers as ProviderView[]).find((p) => p.id === id);
  if (!found) throw new Error(`no provider ${id} in /api/status`);
  return found;
}

/** Polls `check` until it returns a truthy value, or throws with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 5000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The real `openai` SDK pointed at the agent's OpenAI-compatible endpoint; no SDK retries. */
export function agentClient(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-needed-on-loopback', maxRetries: 0 });
}

/** A reply function for the OpenAI fake that names the provider: `<tag>: <last user text>`. */
export function taggedOpenAiReply(tag: string) {
  return (body: RecordedRequest['body']): string =>
    `${tag}: ${textOf([...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '')}`;
}

/** The same for the Anthropic fake. */
export function taggedAnthropicReply(tag: string) {
  return (body: AnthropicRequest['body']): string => {
    const last = [...body.messages].reverse().find((m) => m.role === 'user')?.content;
    const text =
      typeof last === 'string'
        ? last
        : (last ?? []).map((block) => (block.type === 'text' ? block.text : '')).join('');
    return `${tag}: ${text}`;
  };
}

/** An OpenAI-format provider entry for the config file, pointing at a fake. */
export function openAiEntry(id: string, baseURL: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    kind: 'openai',
    baseURL,
    model: `${id}-model`,
    price: { inputPerMTok: 1, outputPerMTok: 2 },
    timeoutMs: 10_000,
    ...extra,
  };
}

/** An Anthropic-format provider entry for the config file, pointing at a fake. */
export function anthropicEntry(id: string, baseURL: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    kind: 'anthropic',
    apiKey: 'sk-ant-test-key',
    baseURL,
    model: `${id}-model`,
    price: { inputPerMTok: 3, outputPerMTok: 15 },
    timeoutMs: 10_000,
    ...extra,
  };
}

export async function ask(
  url: string,
  conversationId: string,
  text: string,
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}/api/conversations/${conversationId}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  return { status: response.status, body: await response.json() };
}

/** The reply text of one JSON API turn, failing loudly with the error body otherwise. */
export async function answer(url: string, conversationId: string, text: string): Promise<string> {
  const { status, body } = await ask(url, conversationId, text);
  if (status !== 200) throw new Error(`expected 200, got ${status}: ${JSON.stringify(body)}`);
  return body.reply.text as string;
}
