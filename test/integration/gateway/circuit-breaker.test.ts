import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import {
  answer,
  type GatewayAgent,
  openAiEntry,
  providerStatus,
  startGatewayAgent,
  taggedOpenAiReply,
  waitFor,
} from './gateway-harness.js';

const THRESHOLD = 3;
const PROBE_EVERY_MS = 1500;
const HALF_OPEN_AFTER_MS = 200;

/**
 * Scenario 2: the breaker opens after `breaker.consecutiveFailures`, the primary then gets no chat
 * traffic, and only a successful health probe closes it again.
 */
describe('circuit breaker on the primary', () => {
  let primary: FakeOpenAi;
  let secondary: FakeOpenAi;
  let test: GatewayAgent;
  /** Health probes are `GET /models`: every hit that is not a chat request. */
  const probes = () => primary.hits - primary.chatHits;

  beforeAll(async () => {
    primary = await startFakeOpenAi({ reply: taggedOpenAiReply('primary') });
    secondary = await startFakeOpenAi({ reply: taggedOpenAiReply('secondary') });
    test = await startGatewayAgent({
      providers: [openAiEntry('primary', primary.baseURL), openAiEntry('secondary', secondary.baseURL)],
      gateway: {
        probeEveryMs: PROBE_EVERY_MS,
        breaker: {
          consecutiveFailures: THRESHOLD,
          // Keep the rate breaker out of the way: this test is about the consecutive count.
          minimumCalls: 100,
          windowSize: 100,
          halfOpenAfterMs: HALF_OPEN_AFTER_MS,
        },
      },
    });
  });
  afterAll(async () => {
    await test?.stop();
    await primary?.close();
    await secondary?.close();
  });

  it('opens after the threshold, sends no chat traffic while open, and closes only after a successful probe', async () => {
    // 500 on chat and on probes: nothing the primary does succeeds until the fault is cleared.
    primary.setFault({ kind: 'status', status: 500, probes: true });

    // The first probe is due PROBE_EVERY_MS after start; these failures all come before it.
    for (let i = 1; i <= THRESHOLD; i++) {
      expect(await answer(test.url, 'cb', `fail ${i}`)).toBe(`secondary: fail ${i}`);
      expect(primary.chatHits).toBe(i);
      const state = await providerStatus(test.url, 'primary');
      expect(state.breaker).toBe(i < THRESHOLD ? 'closed' : 'open');
    }
    expect(probes()).toBe(0);
    const opened = test.logs.filter((l) => l.msg === 'provider circuit opened' && l.provider === 'primary');
    expect(opened).toHaveLength(1);

    // Open: requests skip the primary, even once halfOpenAfterMs has passed (no request is a trial).
    expect(await answer(test.url, 'cb', 'while open')).toBe('secondary: while open');
    await new Promise((r) => setTimeout(r, HALF_OPEN_AFTER_MS + 100));
    expect(await answer(test.url, 'cb', 'still open')).toBe('secondary: still open');
    expect(primary.chatHits).toBe(THRESHOLD);

    const report = await answer(test.url, 'cb', '/providers');
    expect(report).toMatch(/^primary \(openai, primary-model\): circuit open$/m);
    expect(report).toMatch(/^secondary \(openai, secondary-model\): circuit closed$/m);
    const statusCommand = await answer(test.url, 'cb', '/status');
    expect(statusCommand).toContain('primary (primary-model) circuit open');

    // A failing probe is the half-open trial; it fails, so the breaker opens again.
    await waitFor('a failed health probe', () => probes() >= 1, 5000);
    const afterFailedProbe = await waitFor(
      'the breaker to be open again after the failed probe',
      async () => {
        const s = await providerStatus(test.url, 'primary');
        return s.breaker === 'open' ? s : undefined;
      },
      3000,
    );
    expect(afterFailedProbe.errors.server_error).toBeGreaterThan(THRESHOLD);
    expect(await answer(test.url, 'cb', 'after a failed probe')).toBe('secondary: after a failed probe');
    expect(primary.chatHits).toBe(THRESHOLD);

    // The primary recovers; only the next successful probe closes the breaker.
    primary.setFault(undefined);
    const probesBefore = probes();
    await waitFor(
      'the breaker to close',
      async () => (await providerStatus(test.url, 'primary')).breaker === 'closed',
      5000,
    );
    expect(probes()).toBeGreaterThan(probesBefore);
    expect(primary.chatHits).toBe(THRESHOLD);
    expect(
      test.logs.some(
        (l) => l.msg === 'provider circuit closed after a successful probe' && l.provider === 'primary',
      ),
    ).toBe(true);

    expect(await answer(test.url, 'cb', 'closed again')).toBe('primary: closed again');
    expect(primary.chatHits).toBe(THRESHOLD + 1);
  });
});
