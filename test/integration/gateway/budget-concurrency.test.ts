import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { type GatewayAgent, getStatus, openAiEntry, startGatewayAgent } from './gateway-harness.js';

/**
 * Scenario 6: 50 concurrent requests, split over two agents on one Redis, against a global daily
 * cap. Reserve-and-check is one Lua script across the cluster, so spending can pass the cap only
 * by the estimation error of the calls in flight; the rest are refused with `budget_exceeded`.
 *
 * Every number is fixed so the bound can be computed exactly, in integer micro-dollars:
 * - price: $1000 per million tokens in and out, i.e. 1000 micro-USD per token;
 * - each prompt is one 36-character user message: the gateway estimates ceil(36/4) + 4 = 13
 *   input tokens, the fake charges ceil(36/4) = 9;
 * - each request sets max_tokens 27, which the fake ignores: it always answers 148 characters,
 *   charged as ceil(148/4) = 37 output tokens (a provider whose usage exceeds the estimate).
 */
const MICROS_PER_TOKEN = 1000; // $1000 per million tokens
const PROMPT_CHARS = 36;
const MAX_TOKENS = 27;
const REPLY = 'All work and no play makes Jack a dull boy. '.repeat(4).slice(0, 148);
const ESTIMATED_INPUT_TOKENS = Math.ceil(PROMPT_CHARS / 4) + 4;
const ACTUAL_INPUT_TOKENS = Math.ceil(PROMPT_CHARS / 4);
const ACTUAL_OUTPUT_TOKENS = Math.ceil(REPLY.length / 4);
const ESTIMATE_MICROS = (ESTIMATED_INPUT_TOKENS + MAX_TOKENS) * MICROS_PER_TOKEN; // 40,000
const ACTUAL_MICROS = (ACTUAL_INPUT_TOKENS + ACTUAL_OUTPUT_TOKENS) * MICROS_PER_TOKEN; // 46,000
/** How much one call can cost beyond what was reserved for it. */
const ERROR_PER_CALL_MICROS = Math.max(0, ACTUAL_MICROS - ESTIMATE_MICROS); // 6,000
const CAP_USD = 1;
const CAP_MICROS = CAP_USD * 1_000_000;
const REQUESTS = 50;
/**
 * A call is admitted only while spent + reserved + its estimate <= cap, so at the last admission
 * at most floor(cap / estimate) calls (that one included) hold reservations, and only those can
 * still add more than they reserved. Hence spent <= cap + that many errors.
 */
const MAX_IN_FLIGHT = Math.min(REQUESTS, Math.floor(CAP_MICROS / ESTIMATE_MICROS)); // 25
const BOUND_MICROS = MAX_IN_FLIGHT * ERROR_PER_CALL_MICROS; // 150,000

const prompt = (i: number) => `budget request #${String(i).padStart(2, '0')}`.padEnd(PROMPT_CHARS, '.');
const micros = (usd: number) => Math.round(usd * 1_000_000);

let redis: TestRedis;
let fake: FakeOpenAi;

beforeAll(async () => {
  redis = await startRedis();
  // Slow enough that many calls are in flight at once, holding reservations.
  fake = await startFakeOpenAi({ reply: () => REPLY, delayMs: 150 });
});
afterAll(async () => {
  await fake?.close();
  await redis?.stop();
});

/** Agents on the shared Redis under one key prefix: one "cluster" per test. */
async function cluster(keyPrefix: string, capUsd: number, count: number): Promise<GatewayAgent[]> {
  const config = {
    providers: [
      openAiEntry('paid', fake.baseURL, {
        price: { inputPerMTok: MICROS_PER_TOKEN, outputPerMTok: MICROS_PER_TOKEN },
      }),
    ],
    gateway: { probeEveryMs: 600_000 },
    budgets: { global: { dailyUsd: capUsd } },
  };
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: keyPrefix };
  return Promise.all(Array.from({ length: count }, () => startGatewayAgent(config, env)));
}

async function complete(url: string, content: string) {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'auto', max_tokens: MAX_TOKENS, messages: [{ role: 'user', content }] }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

function globalDay(status: any) {
  return status.costs.budgets.find((b: any) => b.scope === 'global' && b.period === 'day');
}

describe('a global budget cap under 50 concurrent requests on two agents sharing Redis', () => {
  let agents: GatewayAgent[] = [];
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
  });

  it('never overspends beyond the in-flight estimation error, refuses the rest, and the ledger agrees', async () => {
    expect(ESTIMATE_MICROS).toBe(40_000);
    expect(ACTUAL_MICROS).toBe(46_000);
    expect(BOUND_MICROS).toBe(150_000);
    agents = await cluster('budget-burst', CAP_USD, 2);
    const hitsBefore = fake.chatHits;

    const results = await Promise.all(
      Array.from({ length: REQUESTS }, (_, i) => complete((agents[i % 2] as GatewayAgent).url, prompt(i))),
    );
    const answered = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);

    for (const r of answered) {
      expect(r.body.choices[0].message.content).toBe(REPLY);
      expect(r.body.usage).toMatchObject({
        prompt_tokens: ACTUAL_INPUT_TOKENS,
        completion_tokens: ACTUAL_OUTPUT_TOKENS,
      });
    }
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.body).toEqual({
        error: { code: 'budget_exceeded', message: `the daily global budget of $${CAP_USD} is used up` },
      });
    }
    expect(answered.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    // A refused request never reached the provider.
    expect(fake.chatHits - hitsBefore).toBe(answered.length);

    // Both agents read the same ledger, and it holds exactly the answered calls.
    const [a, b] = await Promise.all(agents.map((agent) => getStatus(agent.url)));
    for (const status of [a, b]) {
      const spentMicros = micros(status.costs.total.dayUsd);
      expect(spentMicros).toBe(answered.length * ACTUAL_MICROS);
      expect(status.costs.total.dayRequests).toBe(answered.length);
      expect(status.costs.providers.paid.dayRequests).toBe(answered.length);
      expect(status.costs.channels['openai-api'].dayRequests).toBe(answered.length);
      const budget = globalDay(status);
      expect(micros(budget.spentUsd)).toBe(spentMicros);
      expect(budget.reservedUsd).toBe(0);
      expect(budget.limitUsd).toBe(CAP_USD);

      // The guarantee: never past the cap by more than the error of the calls in flight...
      expect(spentMicros).toBeLessThanOrEqual(CAP_MICROS + BOUND_MICROS);
      // ...and the cap was used: the last refusal saw less than one estimate left.
      expect(spentMicros).toBeGreaterThan(CAP_MICROS - ESTIMATE_MICROS);
    }

    // Used up for every node: the next request is refused on either agent, and costs nothing.
    for (const agent of agents) {
      const after = await complete(agent.url, prompt(99));
      expect(after.status).toBe(429);
      expect(after.body.error.code).toBe('budget_exceeded');
    }
    expect(fake.chatHits - hitsBefore).toBe(answered.length);

    // The 80% warning fired once for the whole cluster, not once per agent.
    const warnings = agents.flatMap((agent) =>
      agent.logs.filter((l) => l.msg === 'budget passed its warning threshold' && l.scope === 'global'),
    );
    expect(warnings).toHaveLength(1);
  });
});

describe('streamed calls and the budget', () => {
  let agents: GatewayAgent[] = [];
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
  });

  it('are charged when they finish and hold no reservation afterwards', async () => {
    // Room for two calls: after two, spent (92,000) + one estimate (40,000) passes the cap.
    agents = await cluster('budget-stream', 0.1, 1);
    const [agent] = agents as [GatewayAgent];
    /** A streamed completion, read as raw SSE `data:` payloads. */
    const stream = async (content: string) => {
      const response = await fetch(`${agent.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'auto',
          stream: true,
          max_tokens: MAX_TOKENS,
          messages: [{ role: 'user', content }],
        }),
      });
      const data = (await response.text())
        .split('\n\n')
        .map((block) => /^data: (.*)$/m.exec(block)?.[1])
        .filter((d): d is string => d !== undefined && d !== '[DONE]')
        .map((d) => JSON.parse(d) as any);
      return {
        text: data.map((d) => d.choices?.[0]?.delta?.content ?? '').join(''),
        error: data.find((d) => d.error)?.error,
      };
    };

    for (let i = 1; i <= 2; i++) {
      const { text, error } = await stream(prompt(i));
      expect(error).toBeUndefined();
      expect(text).toBe(REPLY);
      const budget = globalDay(await getStatus(agent.url));
      // Settled at its actual cost; nothing left reserved for it.
      expect(micros(budget.spentUsd)).toBe(i * ACTUAL_MICROS);
      expect(budget.reservedUsd).toBe(0);
    }
    const status = await getStatus(agent.url);
    expect(status.costs.total.dayRequests).toBe(2);
    expect(status.costs.total.dayOutputTokens).toBe(2 * ACTUAL_OUTPUT_TOKENS);

    const refused = await stream(prompt(3));
    expect(refused.error).toMatchObject({ code: 'budget_exceeded' });
    expect(refused.text).toBe('');
  });
});
