import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../../fakes/fake-anthropic.js';
import { type FakeFaultSetting, type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import { type AgentProcess, startAgentProcess } from '../../support/agent-process.js';
import { readSse } from '../../support/test-agent.js';
import {
  anthropicEntry,
  ask,
  openAiEntry,
  providerStatus,
  taggedAnthropicReply,
  taggedOpenAiReply,
  waitFor,
  writeConfigFile,
} from './gateway-harness.js';

/**
 * Scenario 9: the built agent (`dist/main.js`) as a real process takes every provider fault in
 * turn on its primary, answers each from the secondary, and stays healthy: after each fault the
 * process is alive, `/healthz` and `/readyz` answer, and a normal request is answered by the
 * primary again. At the end its status counts each failure under its class, nothing was
 * unhandled, and it shuts down cleanly.
 */
const CASES: [name: string, fault: FakeFaultSetting, streamed: boolean, failure: string][] = [
  ['429 rate limit', { kind: 'rate_limit', retryAfterMs: 300 }, false, 'rate_limited'],
  ['500', { kind: 'status', status: 500 }, false, 'server_error'],
  ['529 overloaded', { kind: 'status', status: 529 }, false, 'overloaded'],
  ['hang', { kind: 'hang' }, false, 'timeout'],
  ['garbage body', { kind: 'garbage' }, false, 'malformed'],
  ['garbage stream', { kind: 'garbage' }, true, 'malformed'],
  ['cut stream', { kind: 'cut_stream', afterChunks: 1 }, true, 'connection'],
  ['slow first token', { kind: 'slow_first_token', delayMs: 2000 }, true, 'timeout'],
];

describe('a real agent process under a sequence of provider faults', () => {
  let primary: FakeOpenAi;
  let secondary: FakeAnthropic;
  let agent: AgentProcess;

  beforeAll(async () => {
    primary = await startFakeOpenAi({ reply: taggedOpenAiReply('primary') });
    secondary = await startFakeAnthropic({ reply: taggedAnthropicReply('secondary') });
    const configPath = writeConfigFile({
      providers: [openAiEntry('primary', primary.baseURL), anthropicEntry('secondary', secondary.baseURL)],
      gateway: {
        attemptTimeoutMs: 800,
        firstTokenDeadlineMs: 600,
        deadlineMs: 5000,
        probeEveryMs: 600_000,
        // Every fault must reach the primary: keep its breaker closed through the whole sequence.
        breaker: { consecutiveFailures: 50, minimumCalls: 100, windowSize: 100 },
      },
    });
    agent = await startAgentProcess({
      AGENT_CONFIG: configPath,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-gw-process-')),
    });
  });
  afterAll(async () => {
    if (agent && agent.child.exitCode === null) {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
    await primary?.close();
    await secondary?.close();
  });

  async function expectHealthy(): Promise<void> {
    expect(agent.child.exitCode).toBeNull();
    const health = await fetch(`${agent.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${agent.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
  }

  /** One turn over the streaming JSON API; returns the deltas joined and the final reply. */
  async function streamTurn(conversation: string, text: string) {
    const response = await fetch(`${agent.url}/api/conversations/${conversation}/messages/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
    });
    expect(response.status).toBe(200);
    const events = await readSse(response);
    expect(events.filter((e) => e.event === 'error')).toEqual([]);
    const done = events.find((e) => e.event === 'done');
    expect(done).toBeDefined();
    return {
      deltas: events
        .filter((e) => e.event === 'delta')
        .map((e) => e.data.text)
        .join(''),
      reply: done?.data.reply.text as string,
    };
  }

  it('answers every fault from the secondary and stays healthy', async () => {
    await expectHealthy();
    for (const [name, fault, streamed] of CASES) {
      const conversation = `fault-${name.replace(/\W+/g, '-')}`;
      const text = `during ${name}`;
      primary.setFault({ ...fault, times: 1 });
      const before = primary.chatHits;

      if (streamed) {
        const { deltas, reply } = await streamTurn(conversation, text);
        expect(deltas, name).toBe(reply);
        if (fault.kind === 'cut_stream') {
          // The primary's first chunk, then the secondary's continuation of it.
          expect(reply.startsWith('primary:'), name).toBe(true);
          expect(reply.slice('primary:'.length), name).toMatch(/^secondary: /);
        } else {
          expect(reply, name).toBe(`secondary: ${text}`);
        }
      } else {
        const { status, body } = await ask(agent.url, conversation, text);
        expect({ name, status }).toEqual({ name, status: 200 });
        expect(body.reply.text, name).toBe(`secondary: ${text}`);
      }
      // The fault really was served by the primary.
      expect(primary.chatHits, name).toBe(before + 1);
      expect(primary.requests.at(-1)?.fault, name).toBe(fault.kind);
      expect(primary.fault, name).toBeUndefined();

      await expectHealthy();
      // Once any cooldown is over, a normal request is answered by the primary again.
      await waitFor(
        `the primary's cooldown after ${name} to end`,
        async () => (await providerStatus(agent.url, 'primary')).cooldownUntil === undefined,
        3000,
      );
      const normal = await ask(agent.url, conversation, `after ${name}`);
      expect({ name, status: normal.status }).toEqual({ name, status: 200 });
      expect(normal.body.reply.text, name).toBe(`primary: after ${name}`);
    }

    // Last, a refused key: the primary is disabled, the agent keeps answering.
    primary.setFault({ kind: 'status', status: 401 });
    const { status, body } = await ask(agent.url, 'fault-401', 'during 401');
    expect(status).toBe(200);
    expect(body.reply.text).toBe('secondary: during 401');
    await expectHealthy();
    expect(await ask(agent.url, 'fault-401', 'after 401')).toMatchObject({
      status: 200,
      body: { reply: { text: 'secondary: after 401' } },
    });

    const state = await providerStatus(agent.url, 'primary');
    expect(state.disabled).toBe('key refused (HTTP 401)');
    expect(state.errors).toEqual({
      rate_limited: 1,
      server_error: 1,
      overloaded: 1,
      timeout: 2,
      malformed: 2,
      connection: 1,
      unauthorized: 1,
    });
    expect((await providerStatus(agent.url, 'secondary')).errors).toEqual({});

    const logs = agent.output.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
    expect(logs.filter((l) => l.level >= 60 || /unhandled|uncaught/i.test(l.msg))).toEqual([]);

    // And it still shuts down cleanly.
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});
