import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { GATEWAY_DEFAULTS } from '../../../../src/core/config/gateway-schema.js';
import { AgentError } from '../../../../src/core/errors.js';
import {
  BudgetExceededError,
  type CostGuard,
  unlimitedCostGuard,
} from '../../../../src/providers/budget/cost-guard.js';
import { CONTINUE_INSTRUCTION } from '../../../../src/providers/gateway/continuation.js';
import { Gateway, type GatewayOptions } from '../../../../src/providers/gateway/gateway.js';
import { ProviderRoute, type RouteSettings } from '../../../../src/providers/gateway/route.js';
import { LocalProviderStateStore } from '../../../../src/providers/gateway/shared-state.js';
import type { ChatStreamEvent } from '../../../../src/providers/provider.js';
import { ScriptedProvider } from './scripted-provider.js';

const request = { system: 'sys', messages: [{ role: 'user' as const, content: 'hello' }] };

function build(
  providers: ScriptedProvider[],
  options: Partial<GatewayOptions> & { settings?: Partial<RouteSettings>[]; clock?: { now: number } } = {},
) {
  const clock = options.clock;
  const now = clock ? () => clock.now : Date.now;
  const routes = providers.map(
    (provider, i) =>
      new ProviderRoute(
        provider,
        {
          priority: i,
          weight: 1,
          contextWindow: 100_000,
          tools: true,
          streaming: true,
          fingerprint: `fp-${provider.id}`,
          ...options.settings?.[i],
        },
        { ...GATEWAY_DEFAULTS.breaker, consecutiveFailures: 3, halfOpenAfterMs: 30 },
      ),
  );
  const state = new LocalProviderStateStore(now);
  const gateway = new Gateway({
    ...GATEWAY_DEFAULTS,
    routes,
    state,
    costGuard: unlimitedCostGuard,
    logger: pino({ level: 'silent' }),
    attemptTimeoutMs: 200,
    deadlineMs: 2000,
    firstTokenDeadlineMs: 150,
    now,
    ...options,
  });
  return { gateway, routes, state };
}

async function collect(events: AsyncIterable<ChatStreamEvent>) {
  const out: ChatStreamEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('Gateway', () => {
  it('answers from the first healthy provider in priority order', async () => {
    const a = new ScriptedProvider('a', { ok: 'from a' });
    const b = new ScriptedProvider('b', { ok: 'from b' });
    const { gateway } = build([a, b]);
    expect((await gateway.complete(request)).text).toBe('from a');
    expect(b.calls).toHaveLength(0);
  });

  it('on 429 fails over and sends nothing to the provider until its retry-after has passed', async () => {
    const clock = { now: 1_000_000 };
    const a = new ScriptedProvider('a', [
      { fail: 'rate_limited', status: 429, retryAfterMs: 20_000 },
      { ok: 'a again' },
    ]);
    const b = new ScriptedProvider('b', { ok: 'from b' });
    const { gateway, state } = build([a, b], { clock });
    expect((await gateway.complete(request)).text).toBe('from b');
    expect(state.get('a').cooldownUntil).toBe(1_020_000);
    clock.now += 19_999;
    expect((await gateway.complete(request)).text).toBe('from b');
    expect(a.calls).toHaveLength(1);
    clock.now += 2;
    expect((await gateway.complete(request)).text).toBe('a again');
  });

  it('opens the breaker after its threshold, then only a successful probe closes it', async () => {
    const a = new ScriptedProvider('a', { fail: 'server_error', status: 500 });
    const b = new ScriptedProvider('b', { ok: 'from b' });
    const { gateway, routes } = build([a, b]);
    for (let i = 0; i < 3; i += 1) expect((await gateway.complete(request)).text).toBe('from b');
    expect(gateway.snapshot()[0]?.breaker).toBe('open');
    for (let i = 0; i < 5; i += 1) await gateway.complete(request);
    expect(a.calls).toHaveLength(3);

    a.probeFails = true;
    await new Promise((r) => setTimeout(r, 40));
    await gateway.probeRoute(routes[0] as ProviderRoute);
    expect(gateway.snapshot()[0]?.breaker).toBe('open');
    a.probeFails = false;
    await new Promise((r) => setTimeout(r, 40));
    await gateway.probeRoute(routes[0] as ProviderRoute);
    expect(gateway.snapshot()[0]?.breaker).toBe('closed');
  });

  it('re-opens at once when the first real call after a passing probe fails (chat down, probe up)', async () => {
    const a = new ScriptedProvider('a', { fail: 'server_error', status: 500 });
    const b = new ScriptedProvider('b', { ok: 'from b' });
    const { gateway, routes } = build([a, b]);
    for (let i = 0; i < 3; i += 1) await gateway.complete(request);
    expect(gateway.snapshot()[0]?.breaker).toBe('open');
    await new Promise((r) => setTimeout(r, 40));
    await gateway.probeRoute(routes[0] as ProviderRoute);
    expect(gateway.snapshot()[0]?.breaker).toBe('closed');
    // Chat still fails: one real call, then the breaker is open again (not another run of three).
    for (let i = 0; i < 4; i += 1) expect((await gateway.complete(request)).text).toBe('from b');
    expect(a.calls).toHaveLength(4);
    expect(gateway.snapshot()[0]?.breaker).toBe('open');
  });

  it('ends probation with a successful real call', async () => {
    const fail = { fail: 'server_error', status: 500 } as const;
    // Three failures open it; after the probe, one success, then failures again.
    const a = new ScriptedProvider('a', [fail, fail, fail, { ok: 'a is back' }, fail]);
    const b = new ScriptedProvider('b', { ok: 'from b' });
    const { gateway, routes } = build([a, b]);
    for (let i = 0; i < 3; i += 1) await gateway.complete(request);
    await new Promise((r) => setTimeout(r, 40));
    await gateway.probeRoute(routes[0] as ProviderRoute);
    expect((await gateway.complete(request)).text).toBe('a is back');
    // Off probation: one failure no longer opens it.
    expect((await gateway.complete(request)).text).toBe('from b');
    expect(gateway.snapshot()[0]?.breaker).toBe('closed');
  });

  it('answers a hang from the next provider within the deadline, and counts it as a timeout', async () => {
    const a = new ScriptedProvider('a', { hang: true });
    const b = new ScriptedProvider('b', { ok: 'from b' });
    const { gateway } = build([a, b]);
    const started = Date.now();
    expect((await gateway.complete(request)).text).toBe('from b');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(gateway.snapshot()[0]?.errors).toEqual({ timeout: 1 });
  });

  it('fails with a clear error when every provider fails', async () => {
    const a = new ScriptedProvider('a', { fail: 'server_error', status: 500 });
    const b = new ScriptedProvider('b', { fail: 'overloaded', status: 529 });
    const { gateway } = build([a, b]);
    await expect(gateway.complete(request)).rejects.toThrow(
      /a: server_error \(HTTP 500\); b: overloaded \(HTTP 529\)/,
    );
  });

  it('disables a provider whose key is refused until its key changes', async () => {
    const a = new ScriptedProvider('a', { fail: 'unauthorized', status: 401 });
    const b = new ScriptedProvider('b', { ok: 'from b' });
    const { gateway, state } = build([a, b]);
    await gateway.complete(request);
    await gateway.complete(request);
    expect(a.calls).toHaveLength(1);
    expect(gateway.snapshot()[0]?.disabled).toMatch(/key refused \(HTTP 401\)/);
    expect(state.get('a').disabled?.fingerprint).toBe('fp-a');
  });

  it('continues a cut stream on the next provider from the partial text', async () => {
    const a = new ScriptedProvider('a', { streamThenFail: ['The answer ', 'is '], fail: 'connection' });
    const b = new ScriptedProvider('b', { ok: '42.' });
    const { gateway } = build([a, b]);
    const events = await collect(gateway.stream(request));
    const text = events.flatMap((e) => (e.type === 'text' ? [e.text] : [])).join('');
    expect(text).toBe('The answer is 42.');
    const done = events.at(-1);
    expect(done?.type === 'done' && done.result.text).toBe('The answer is 42.');
    expect(b.calls[0]?.messages.slice(-2)).toEqual([
      { role: 'assistant', content: 'The answer is ' },
      { role: 'user', content: CONTINUE_INSTRUCTION },
    ]);
  });

  it('fails over a stream whose first token does not come in time', async () => {
    const a = new ScriptedProvider('a', { hang: true });
    const b = new ScriptedProvider('b', { ok: 'quick' });
    const { gateway } = build([a, b]);
    const events = await collect(gateway.stream(request));
    expect(events.at(-1)).toMatchObject({ type: 'done', result: { text: 'quick', providerId: 'b' } });
  });

  it('tries another provider on a content refusal, or returns it when configured to', async () => {
    const a = new ScriptedProvider('a', { ok: 'I cannot help', finishReason: 'refusal' });
    const b = new ScriptedProvider('b', { ok: 'sure' });
    expect((await build([a, b]).gateway.complete(request)).text).toBe('sure');
    const c = new ScriptedProvider('c', { ok: 'I cannot help', finishReason: 'refusal' });
    const d = new ScriptedProvider('d', { ok: 'sure' });
    expect((await build([c, d], { onRefusal: 'return' }).gateway.complete(request)).text).toBe(
      'I cannot help',
    );
  });

  it('moves a too-long prompt to a larger window, and trims history when none is larger', async () => {
    const small = new ScriptedProvider('small', { fail: 'context_too_long', status: 400 });
    const large = new ScriptedProvider('large', { ok: 'fits' });
    const { gateway } = build([small, large], {
      settings: [{ contextWindow: 8000 }, { contextWindow: 200_000 }],
    });
    expect((await gateway.complete(request)).text).toBe('fits');

    const only = new ScriptedProvider('only', [{ fail: 'context_too_long', status: 400 }, { ok: 'trimmed' }]);
    const long = {
      messages: [
        { role: 'user' as const, content: 'old 1' },
        { role: 'assistant' as const, content: 'old 2' },
        { role: 'user' as const, content: 'old 3' },
        { role: 'assistant' as const, content: 'old 4' },
        { role: 'user' as const, content: 'newest' },
      ],
    };
    expect((await build([only]).gateway.complete(long)).text).toBe('trimmed');
    expect(only.calls[1]?.messages.map((m) => m.content)).toEqual(['old 4', 'newest']);
  });

  it('skips providers that cannot do what the request needs', async () => {
    const noTools = new ScriptedProvider('notools', { ok: 'no' });
    const tools = new ScriptedProvider('tools', { ok: 'yes' });
    const { gateway } = build([noTools, tools], { settings: [{ tools: false }, {}] });
    const withTools = {
      ...request,
      tools: [{ name: 't', description: 'd', parameters: { type: 'object' } }],
    };
    expect((await gateway.complete(withTools)).text).toBe('yes');
  });

  it('routes by cost, by latency, and by weight', async () => {
    const price = (p: number) => ({ price: { inputPerMTok: p, outputPerMTok: p } });
    const dear = new ScriptedProvider('dear', { ok: 'dear' });
    const cheap = new ScriptedProvider('cheap', { ok: 'cheap' });
    const byCost = build([dear, cheap], { strategy: 'cost', settings: [price(10), price(1)] });
    expect((await byCost.gateway.complete(request)).text).toBe('cheap');

    const slow = new ScriptedProvider('slow', { ok: 'slow' });
    const fast = new ScriptedProvider('fast', { ok: 'fast' });
    const byLatency = build([slow, fast], { strategy: 'latency' });
    byLatency.routes[0]?.latency.record(300);
    byLatency.routes[1]?.latency.record(20);
    expect((await byLatency.gateway.complete(request)).text).toBe('fast');

    const heavy = new ScriptedProvider('heavy', { ok: 'heavy' });
    const light = new ScriptedProvider('light', { ok: 'light' });
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const weighted = build([heavy, light], {
      strategy: 'weighted',
      random,
      settings: [{ weight: 3 }, { weight: 1 }],
    });
    const counts = { heavy: 0, light: 0 };
    for (let i = 0; i < 400; i += 1)
      counts[(await weighted.gateway.complete(request)).text as 'heavy' | 'light'] += 1;
    expect(counts.heavy / 400).toBeGreaterThan(0.65);
    expect(counts.heavy / 400).toBeLessThan(0.85);
  });

  it('at a provider cap routes on; at a global cap only a free provider may answer', async () => {
    const guard = (refuse: (providerId: string) => BudgetExceededError | undefined): CostGuard => ({
      async reserve(input) {
        const error = refuse(input.providerId);
        if (error && input.estimatedUsd > 0) throw error;
        return { id: 'r', input };
      },
      async settle() {},
      async release() {},
    });
    const price = (p: number) => ({ price: { inputPerMTok: p, outputPerMTok: p } });
    const paid = new ScriptedProvider('paid', { ok: 'paid' });
    const other = new ScriptedProvider('other', { ok: 'other' });
    const providerCap = build([paid, other], {
      settings: [price(5), price(5)],
      costGuard: guard((id) =>
        id === 'paid' ? new BudgetExceededError('provider', 'day', 1, 'paid') : undefined,
      ),
    });
    expect((await providerCap.gateway.complete(request)).text).toBe('other');

    const p1 = new ScriptedProvider('p1', { ok: 'p1' });
    const free = new ScriptedProvider('free', { ok: 'free' });
    const p2 = new ScriptedProvider('p2', { ok: 'p2' });
    const globalCap = build([p1, p2, free], {
      settings: [price(5), price(5), price(0)],
      costGuard: guard(() => new BudgetExceededError('global', 'month', 100, 'all')),
    });
    expect((await globalCap.gateway.complete(request)).text).toBe('free');
    expect(p2.calls).toHaveLength(0);

    const noFree = build([new ScriptedProvider('x', { ok: 'x' })], {
      settings: [price(5)],
      costGuard: guard(() => new BudgetExceededError('person', 'day', 2, 'http:alice')),
    });
    const error = await noFree.gateway.complete(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentError);
    expect(error).toMatchObject({
      code: 'budget_exceeded',
      message: expect.stringMatching(/daily person budget for http:alice/),
    });
  });

  it('hedges a slow primary with the next provider and takes the first answer', async () => {
    const slow = new ScriptedProvider('slow', { hang: true });
    const backup = new ScriptedProvider('backup', { ok: 'hedged' });
    const { gateway } = build([slow, backup], {
      hedge: { enabled: true, delayMs: 20 },
      attemptTimeoutMs: 1000,
    });
    const started = Date.now();
    expect((await gateway.complete(request)).text).toBe('hedged');
    expect(Date.now() - started).toBeLessThan(500);
    // The losing call was cancelled, not counted against the primary's health.
    await new Promise((r) => setTimeout(r, 10));
    expect(gateway.snapshot()[0]?.errors).toEqual({});
  });
});
