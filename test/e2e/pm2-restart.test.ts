import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV_OVERRIDES } from '../../src/core/config/env-overrides.js';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { freePort } from '../support/free-port.js';

/**
 * The real PM2 (the project's own dependency) runs the built agent from ecosystem.config.cjs,
 * with its own PM2_HOME so it never talks to (or starts) the user's PM2 daemon. A SIGKILL must
 * be followed by an automatic restart that answers again with its memory intact.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const PM2_BIN = join(ROOT, 'node_modules/pm2/bin/pm2');
const APP = 'agent';
const run = promisify(execFile);

interface Pm2Process {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time: number };
}

interface HistoryResponse {
  conversationId: string;
  turns: { user: string; assistant: string; at: number }[];
}

let fake: FakeOpenAi | undefined;
let pm2Home: string | undefined;
let dataDir: string | undefined;
let baseUrl = '';
let env: NodeJS.ProcessEnv = {};
/** Every agent pid seen, to make sure none outlives the test. */
const agentPids = new Set<number>();

function pm2(...args: string[]): Promise<string> {
  return run(process.execPath, [PM2_BIN, ...args], { cwd: ROOT, env, timeout: 20_000 }).then((r) => r.stdout);
}

async function describeAgent(): Promise<Pm2Process | undefined> {
  const stdout = await pm2('jlist');
  // jlist prints one JSON array; skip anything PM2 may print before it.
  const list = JSON.parse(stdout.slice(stdout.indexOf('['))) as Pm2Process[];
  const proc = list.find((p) => p.name === APP);
  if (proc?.pid) agentPids.add(proc.pid);
  return proc;
}

/** Polls `probe` until it returns a value, or fails after `timeoutMs` naming what it waited for. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}` +
      `${lastError ? ` (last error: ${String(lastError)})` : ''}\n${agentLogs()}`,
  );
}

function agentLogs(): string {
  if (!pm2Home) return '';
  return ['pm2.log', `logs/${APP}-out.log`, `logs/${APP}-error.log`]
    .map((name) => join(pm2Home as string, name))
    .filter((path) => existsSync(path))
    .map((path) => `--- ${path}\n${readFileSync(path, 'utf8').split('\n').slice(-40).join('\n')}`)
    .join('\n');
}

async function healthy(): Promise<true | undefined> {
  const response = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
  return response.ok ? true : undefined;
}

async function send(text: string): Promise<string> {
  const response = await fetch(`${baseUrl}/api/conversations/c1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
    signal: AbortSignal.timeout(10_000),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { reply: { text: string } }).reply.text;
}

async function history(): Promise<HistoryResponse['turns']> {
  const response = await fetch(`${baseUrl}/api/conversations/c1/messages`, {
    signal: AbortSignal.timeout(5000),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as HistoryResponse).turns;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('PM2 runs the agent from ecosystem.config.cjs', () => {
  beforeAll(async () => {
    fake = await startFakeOpenAi();
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    // Short paths: PM2's RPC sockets live in PM2_HOME, and Unix socket paths max out at ~107 bytes.
    pm2Home = mkdtempSync(join(tmpdir(), 'pm2-home-'));
    dataDir = mkdtempSync(join(tmpdir(), 'pm2-test-data-'));
    const configFile = join(dataDir, 'agent.config.json');
    writeFileSync(configFile, '{}\n');

    // PM2 hands the CLI's environment to the app: drop any agent settings the developer's shell
    // has (REDIS_URL, API keys, ...) so only the values below apply.
    const inherited = { ...process.env };
    for (const { env: name } of ENV_OVERRIDES) {
      delete inherited[name];
      delete inherited[`${name}_FILE`];
    }
    env = {
      ...inherited,
      PM2_HOME: pm2Home,
      // Never ask about (or start) PM2.io / Keymetrics.
      PM2_NO_INTERACTION: 'true',
      // A config file of our own, so an agent.config.json in the repository cannot leak in.
      AGENT_CONFIG: configFile,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
      DATA_DIR: join(dataDir, 'memory'),
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
      LOCAL_LLM_PROBE: 'false',
      LOG_LEVEL: 'info',
    };
  });

  afterAll(async () => {
    // `pm2 kill` stops the app (SIGINT, then SIGKILL after kill_timeout) and the isolated daemon.
    if (pm2Home) {
      const daemonPidFile = join(pm2Home, 'pm2.pid');
      const daemonPid = existsSync(daemonPidFile) ? Number(readFileSync(daemonPidFile, 'utf8')) : undefined;
      await pm2('kill').catch((error: unknown) => console.error('pm2 kill failed:', error));
      // Belt and braces if `pm2 kill` failed: the daemon and agents this test started, by pid.
      for (const pid of [daemonPid, ...agentPids]) {
        if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
      }
      rmSync(pm2Home, { recursive: true, force: true });
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await fake?.close();
  });

  it('restarts the agent after SIGKILL, and the restarted agent remembers the conversation', async () => {
    await pm2('start', join(ROOT, 'ecosystem.config.cjs'));

    const first = await waitFor('PM2 to report the agent online', async () => {
      const proc = await describeAgent();
      return proc?.pm2_env.status === 'online' && proc.pid > 0 ? proc : undefined;
    });
    await waitFor('the agent to answer /healthz', healthy);
    expect(await send('hi')).toBe('echo: hi');

    process.kill(first.pid, 'SIGKILL');

    const second = await waitFor('PM2 to restart the agent', async () => {
      const proc = await describeAgent();
      return proc?.pm2_env.status === 'online' && proc.pid > 0 && proc.pid !== first.pid ? proc : undefined;
    });
    expect(isAlive(first.pid)).toBe(false);
    expect(second.pm2_env.restart_time).toBeGreaterThanOrEqual(1);
    await waitFor('the restarted agent to answer /healthz', healthy);

    // The turn answered before the SIGKILL was fsync'd, so the new process loaded it...
    expect(await history()).toEqual([expect.objectContaining({ user: 'hi', assistant: 'echo: hi' })]);
    // ...and sends it to the model as context for the next turn.
    expect(await send('again')).toBe('echo: again');
    const lastRequest = fake?.requests.at(-1);
    expect(lastRequest?.body.messages).toEqual(
      expect.arrayContaining([
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'echo: hi' },
        { role: 'user', content: 'again' },
      ]),
    );
    expect((await history()).map((t) => t.user)).toEqual(['hi', 'again']);
  }, 90_000);
});
