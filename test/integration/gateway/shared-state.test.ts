import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import {
  answer,
  type GatewayAgent,
  openAiEntry,
  providerStatus,
  startGatewayAgent,
  taggedOpenAiReply,
  waitFor,
} from './gateway-harness.js';

/**
 * Scenario 8: two agents on one Redis share what they learn about a provider. A 429, an open
 * breaker or a refused key seen by agent A makes agent B skip that provider too, although B
 * itself never saw it fail. (State travels by a Redis write plus a pub/sub notification, so B is
 * given a moment to hear of it, observed through its own `/api/status`.)
 */
let redis: TestRedis;
let primary: FakeOpenAi;
let secondary: FakeOpenAi;
let agents: GatewayAgent[] = [];

beforeAll(async () => {
  redis = await startRedis();
  primary = await startFakeOpenAi({ reply: taggedOpenAiReply('primary') });
  secondary = await startFakeOpenAi({ reply: taggedOpenAiReply('secondary') });
});
afterEach(async () => {
  primary.setFault(undefined);
  await Promise.all(agents.map((a) => a.stop()));
  agents = [];
});
afterAll(async () => {
  await primary?.close();
  await secondary?.close();
  await redis?.stop();
});

/** Agents A and B: same providers, same Redis and key prefix (a fresh prefix per test). */
async function pair(keyPrefix: string): Promise<[GatewayAgent, GatewayAgent]> {
  const config = {
    providers: [openAiEntry('primary', primary.baseURL), openAiEntry('secondary', secondary.baseURL)],
    // No health probes during these tests: only requests change the state.
    gateway: {
      probeEveryMs: 600_000,
      breaker: { consecutiveFailures: 2, minimumCalls: 100, windowSize: 100, halfOpenAfterMs: 60_000 },
    },
  };
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: keyPrefix };
  agents = await Promise.all([startGatewayAgent(config, env), startGatewayAgent(config, env)]);
  return agents as [GatewayAgent, GatewayAgent];
}

describe('two agents on the same Redis', () => {
  it('share a cooldown: a 429 seen by A makes B skip the provider', async () => {
    const [a, b] = await pair('shared-cooldown');
    expect(await answer(b.url, 'b', 'before')).toBe('primary: before');
    const hits = primary.chatHits;

    primary.setFault({ kind: 'rate_limit', retryAfterSeconds: 30 });
    expect(await answer(a.url, 'a', 'hit the limit')).toBe('secondary: hit the limit');
    expect(primary.chatHits).toBe(hits + 1);
    const onA = await providerStatus(a.url, 'primary');
    expect(onA.cooldownUntil).toBeDefined();

    const onB = await waitFor('B to hear of the cooldown', async () => {
      const s = await providerStatus(b.url, 'primary');
      return s.cooldownUntil ? s : undefined;
    });
    expect(onB.cooldownUntil).toBe(onA.cooldownUntil);
    // B never saw the 429 itself.
    expect(onB.errors).toEqual({});

    for (const text of ['one', 'two', 'three']) {
      expect(await answer(b.url, 'b', text)).toBe(`secondary: ${text}`);
    }
    expect(primary.chatHits).toBe(hits + 1);
    expect(await answer(b.url, 'b', '/providers')).toMatch(
      /^primary \(openai, primary-model\): circuit closed, rate-limited for \d+ s$/m,
    );
  });

  it('share an open breaker: B skips the provider A opened the circuit on', async () => {
    const [a, b] = await pair('shared-breaker');
    primary.setFault({ kind: 'status', status: 500 });
    const hits = primary.chatHits;
    for (const text of ['fail 1', 'fail 2'])
      expect(await answer(a.url, 'a', text)).toBe(`secondary: ${text}`);
    expect(primary.chatHits).toBe(hits + 2);
    expect((await providerStatus(a.url, 'primary')).breaker).toBe('open');

    const onB = await waitFor('B to hear of the open circuit', async () => {
      const s = await providerStatus(b.url, 'primary');
      return s.breaker === 'open elsewhere' ? s : undefined;
    });
    expect(onB.errors).toEqual({});

    // The primary would answer B now, but B must not ask it.
    primary.setFault(undefined);
    for (const text of ['one', 'two']) expect(await answer(b.url, 'b', text)).toBe(`secondary: ${text}`);
    expect(primary.chatHits).toBe(hits + 2);
    expect(await answer(b.url, 'b', '/status')).toContain('primary (primary-model) circuit open elsewhere');
  });

  it('share a refused key: a 401 seen by A disables the provider on B', async () => {
    const [a, b] = await pair('shared-key');
    primary.setFault({ kind: 'status', status: 401 });
    const hits = primary.chatHits;
    expect(await answer(a.url, 'a', 'who am i')).toBe('secondary: who am i');

    const onB = await waitFor('B to hear of the refused key', async () => {
      const s = await providerStatus(b.url, 'primary');
      return s.disabled ? s : undefined;
    });
    expect(onB.disabled).toBe('key refused (HTTP 401)');
    primary.setFault(undefined);
    expect(await answer(b.url, 'b', 'and me')).toBe('secondary: and me');
    expect(primary.chatHits).toBe(hits + 1);
  });
});
