import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { startAgentProcess } from '../support/agent-process.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const CONVERSATIONS = 16;
const KILL_AFTER_ANSWERS = 200;

describe.each(['log', 'redis'])('kill -9 during a burst loses no answered turn (%s memory)', (backend) => {
  let fake: FakeOpenAi;
  let redis: TestRedis | undefined;

  beforeAll(async () => {
    // A little provider latency keeps many turns in flight when the kill lands.
    fake = await startFakeOpenAi({ delayMs: 5, record: false });
    if (backend === 'redis') redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
    await fake.close();
  });

  it('finds every answered message in memory after the restart', async () => {
    const env = {
      DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-kill-')),
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
      LOG_LEVEL: 'warn',
      ...(redis ? { REDIS_URL: redis.url } : {}),
    };
    const agent = await startAgentProcess(env);
    const answered = new Map<string, string[]>();
    let answeredCount = 0;
    let sent = 0;
    let killed = false;

    const sender = async (conversation: string) => {
      const mine: string[] = [];
      answered.set(conversation, mine);
      for (let n = 0; !killed; n += 1) {
        const text = `${conversation} message ${n}`;
        sent += 1;
        try {
          const response = await fetch(`${agent.url}/api/conversations/${conversation}/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ text, eventId: `${conversation}-${n}` }),
          });
          const body = (await response.json()) as { reply?: { text: string } };
          if (response.status !== 200 || body.reply?.text !== `echo: ${text}`)
            throw new Error(`bad answer ${response.status}`);
          mine.push(text);
          answeredCount += 1;
          if (answeredCount >= KILL_AFTER_ANSWERS && !killed) {
            killed = true;
            agent.child.kill('SIGKILL');
          }
        } catch {
          // The connection dies with the process: this message was not answered.
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: CONVERSATIONS }, (_, i) => sender(`burst${i}`)));
    await agent.exited;
    expect(killed).toBe(true);

    const restarted = await startAgentProcess(env);
    try {
      let lost = 0;
      let found = 0;
      for (const [conversation, texts] of answered) {
        const response = await fetch(`${restarted.url}/api/conversations/${conversation}/messages?limit=500`);
        const { turns } = (await response.json()) as { turns: { user: string; assistant: string }[] };
        const stored = new Set(turns.map((t) => t.user));
        for (const text of texts) {
          if (stored.has(text)) found += 1;
          else lost += 1;
        }
        // Stored turns are in the order they were sent, each with its own reply.
        const order = turns.map((t) => Number(t.user.split(' ').pop()));
        expect(order).toEqual([...order].sort((a, b) => a - b));
        for (const t of turns) expect(t.assistant).toBe(`echo: ${t.user}`);
      }
      console.info(`[${backend}] sent ${sent}, answered ${answeredCount}, found ${found}, lost ${lost}`);
      expect(answeredCount).toBeGreaterThanOrEqual(KILL_AFTER_ANSWERS);
      expect(found).toBe(answeredCount);
      expect(lost).toBe(0);
    } finally {
      restarted.child.kill('SIGTERM');
      await restarted.exited;
    }
  });
});
