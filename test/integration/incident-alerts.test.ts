import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { type FakeTelegram, startFakeTelegram } from '../fakes/fake-telegram.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { postMessage, startTestAgent, type TestAgent } from '../support/test-agent.js';
import { until } from '../support/until.js';

const OWNER = 4242;
const CHECK_EVERY_MS = 100;

/**
 * The owners hear of incidents on the chat they used last: one message when a condition starts,
 * one when it ends, never a flood while it lasts. Real Redis, fake Telegram and OpenAI.
 */
describe('incident alerts to the owners', () => {
  let redis: TestRedis;
  let telegram: FakeTelegram;
  let primary: FakeOpenAi;
  let secondary: FakeOpenAi;
  let test: TestAgent;
  let redisDown = false;

  beforeAll(async () => {
    redis = await startRedis();
    telegram = await startFakeTelegram();
    primary = await startFakeOpenAi();
    secondary = await startFakeOpenAi();
    const dir = mkdtempSync(join(tmpdir(), 'agent-incidents-'));
    writeFileSync(
      join(dir, 'agent.config.json'),
      JSON.stringify({
        channels: { telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 } },
        providers: [
          { id: 'primary', kind: 'openai', baseURL: primary.baseURL, model: 'm1' },
          { id: 'secondary', kind: 'openai', baseURL: secondary.baseURL, model: 'm2' },
        ],
        gateway: {
          probeEveryMs: 300,
          breaker: { consecutiveFailures: 2, minimumCalls: 100, windowSize: 100, halfOpenAfterMs: 200 },
        },
        alerts: {
          owners: [`telegram:${OWNER}`],
          providerOpenAfterMs: 300,
          redisDownAfterMs: 300,
          checkEveryMs: CHECK_EVERY_MS,
        },
      }),
    );
    test = await startTestAgent({
      REDIS_URL: redis.url,
      NODE_ID: 'watcher',
      AGENT_CONFIG: join(dir, 'agent.config.json'),
      DATA_DIR: dir,
    });
  });
  afterAll(async () => {
    await test.agent.stop();
    if (redisDown) await redis.up();
    await redis.stop();
    await telegram.close();
    await primary.close();
    await secondary.close();
  });

  const toOwner = (pattern: RegExp) =>
    telegram.sent.filter((m) => m.chatId === OWNER && pattern.test(m.text));

  it('reports a provider that keeps failing and Redis going away, once each, and each recovery', async () => {
    // The owner wrote on Telegram: that is where alerts reach them.
    await until(() => test.agent.channels?.status().telegram?.connected === true);
    telegram.pushText(OWNER, OWNER, 'hello');
    await until(() => telegram.sent.some((m) => m.chatId === OWNER && m.text.includes('hello')));

    primary.setFault({ kind: 'status', status: 500, probes: true });
    for (const text of ['one', 'two', 'three'])
      expect((await postMessage(test.url, 'user', { text })).status).toBe(200);
    await until(() => toOwner(/provider "primary" has been failing/).length === 1, 10_000);
    // It lasts: still one message after many more checks.
    await sleep(CHECK_EVERY_MS * 10);
    expect(toOwner(/provider "primary" has been failing/)).toHaveLength(1);
    expect(toOwner(/watcher: /).length).toBeGreaterThanOrEqual(1);

    primary.setFault(undefined);
    await until(() => toOwner(/provider "primary" answers again/).length === 1, 10_000);

    await redis.down();
    redisDown = true;
    await until(() => toOwner(/Redis is unreachable/).length === 1, 10_000);
    await sleep(CHECK_EVERY_MS * 10);
    expect(toOwner(/Redis is unreachable/)).toHaveLength(1);
    await redis.up();
    redisDown = false;
    await until(() => toOwner(/Redis is reachable again/).length === 1, 15_000);

    const status = (await (await fetch(`${test.url}/api/status`)).json()) as { incidents: unknown[] };
    expect(status.incidents).toEqual([]);
    expect(toOwner(/provider "primary" has been failing/)).toHaveLength(1);
  });

  it('tells the owners once when a budget passes its warning threshold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-budget-alerts-'));
    writeFileSync(
      join(dir, 'agent.config.json'),
      JSON.stringify({
        channels: { telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 } },
        providers: [
          // About $0.01 a call (a new conversation each, so the estimate stays small): the $0.5 daily
          // budget warns (at 80%) after a few dozen calls.
          {
            id: 'paid',
            kind: 'openai',
            baseURL: primary.baseURL,
            model: 'm1',
            price: { inputPerMTok: 1000, outputPerMTok: 1000 },
          },
        ],
        gateway: { defaultMaxOutputTokens: 8, probeEveryMs: 600_000 },
        budgets: { global: { dailyUsd: 0.5 } },
        alerts: { owners: [`telegram:${OWNER}`], checkEveryMs: CHECK_EVERY_MS },
      }),
    );
    await test.agent.stop();
    test = await startTestAgent({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'budget-alerts',
      NODE_ID: 'spender',
      AGENT_CONFIG: join(dir, 'agent.config.json'),
      DATA_DIR: dir,
    });
    await until(() => test.agent.channels?.status().telegram?.connected === true);
    telegram.pushText(OWNER, OWNER, 'hello again');
    await until(() => telegram.sent.some((m) => m.chatId === OWNER && m.text.includes('hello again')));

    for (let i = 0; i < 80 && toOwner(/passed its warning threshold/).length === 0; i++)
      await postMessage(test.url, `spender-${i}`, { text: `spend ${i}` });
    await until(() => toOwner(/budget.*passed its warning threshold/).length === 1, 10_000);
    await sleep(CHECK_EVERY_MS * 5);
    expect(toOwner(/budget.*passed its warning threshold/)).toHaveLength(1);
    expect(toOwner(/the daily global budget \(\$0\.5\) passed its warning threshold/)).toHaveLength(1);
  });
});
