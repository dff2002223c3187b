import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { GATEWAY_DEFAULTS } from '../../../../src/core/config/gateway-schema.js';
import { unlimitedCostGuard } from '../../../../src/providers/budget/cost-guard.js';
import { Gateway } from '../../../../src/providers/gateway/gateway.js';
import { ProviderRoute } from '../../../../src/providers/gateway/route.js';
import { LocalProviderStateStore } from '../../../../src/providers/gateway/shared-state.js';
import type { CallOptions, ChatRequest, ChatStreamEvent } from '../../../../src/providers/provider.js';
import { ScriptedProvider } from './scripted-provider.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/**
 * Like the SDKs: adds an abort listener to the signal of every call and never removes it, and
 * remembers each signal weakly, so a test can see whether the gateway still holds it.
 */
class ListeningProvider extends ScriptedProvider {
  readonly signals: WeakRef<AbortSignal>[] = [];

  override async complete(request: ChatRequest, options: CallOptions = {}) {
    this.watch(options.signal);
    return super.complete(request, options);
  }

  override async *stream(request: ChatRequest, options: CallOptions = {}): AsyncIterable<ChatStreamEvent> {
    this.watch(options.signal);
    yield* super.stream(request, options);
  }

  private watch(signal: AbortSignal | undefined): void {
    if (!signal) throw new Error('the gateway must pass a signal');
    signal.addEventListener('abort', () => {});
    this.signals.push(new WeakRef(signal));
  }
}

function gatewayWith(provider: ListeningProvider): Gateway {
  const route = new ProviderRoute(
    provider,
    { priority: 0, weight: 1, contextWindow: 100_000, tools: true, streaming: true, fingerprint: 'fp' },
    { ...GATEWAY_DEFAULTS.breaker, halfOpenAfterMs: 1000 },
  );
  return new Gateway({
    ...GATEWAY_DEFAULTS,
    routes: [route],
    state: new LocalProviderStateStore(),
    costGuard: unlimitedCostGuard,
    logger: pino({ level: 'silent' }),
    // Far longer than the test: a signal held until its deadline fires is held for the whole test.
    deadlineMs: 600_000,
    attemptTimeoutMs: 600_000,
  });
}

async function stillHeld(signals: WeakRef<AbortSignal>[]): Promise<number> {
  for (let i = 0; i < 3; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
  }
  return signals.filter((ref) => ref.deref() !== undefined).length;
}

const request = { messages: [{ role: 'user' as const, content: 'hello' }] };

/**
 * A busy agent makes thousands of calls a second: whatever a finished call leaves reachable
 * until its deadline is memory that every young-generation collection copies.
 */
describe('Gateway call signals', () => {
  it('lets go of a finished call, even when the provider left a listener on its signal', async () => {
    const provider = new ListeningProvider('a', { ok: 'fine' });
    const gateway = gatewayWith(provider);
    const caller = new AbortController();
    for (let i = 0; i < 20; i += 1) await gateway.complete(request);
    for (let i = 0; i < 20; i += 1) await gateway.complete(request, { signal: caller.signal });
    expect(provider.signals).toHaveLength(40);
    expect(await stillHeld(provider.signals)).toBe(0);
  });

  it('lets go of a finished stream the same way', async () => {
    const provider = new ListeningProvider('a', { ok: 'streamed' });
    const gateway = gatewayWith(provider);
    for (let i = 0; i < 20; i += 1) {
      for await (const _event of gateway.stream(request)) {
        // drain
      }
    }
    expect(provider.signals).toHaveLength(20);
    expect(await stillHeld(provider.signals)).toBe(0);
  });
});
