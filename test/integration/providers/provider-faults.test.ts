import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChatRequest } from '../../../src/providers/provider.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../fakes/fake-anthropic.js';
import { type FakeFaultSetting, type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import { AZURE_KEY, type Flavour, failureOf, makeProvider, run } from './provider-harness.js';

let openai: FakeOpenAi;
let anthropic: FakeAnthropic;

beforeAll(async () => {
  openai = await startFakeOpenAi({ azureKey: AZURE_KEY });
  anthropic = await startFakeAnthropic();
});
afterEach(() => {
  openai.setFault(undefined);
  anthropic.setFault(undefined);
});
afterAll(async () => {
  await openai.close();
  await anthropic.close();
});

const request: ChatRequest = {
  messages: [{ role: 'user', content: 'a reply long enough to come in many chunks' }],
};
const flavours: Flavour[] = ['openai', 'azure-openai', 'anthropic'];
const modes = [
  ['plain', false],
  ['streamed', true],
] as const;

function fakeFor(flavour: Flavour): FakeOpenAi | FakeAnthropic {
  return flavour === 'anthropic' ? anthropic : openai;
}

describe.each(flavours)('faults through %s', (flavour) => {
  describe.each(modes)('%s', (_mode, streaming) => {
    const cases: [string, FakeFaultSetting, Record<string, unknown>][] = [
      [
        'rate_limit (retry-after)',
        { kind: 'rate_limit', retryAfterSeconds: 2 },
        { failure: 'rate_limited', status: 429, retryAfterMs: 2000 },
      ],
      [
        'rate_limit (retry-after-ms)',
        { kind: 'rate_limit', retryAfterMs: 1500 },
        { failure: 'rate_limited', retryAfterMs: 1500 },
      ],
      ['status 500', { kind: 'status', status: 500 }, { failure: 'server_error', status: 500 }],
      ['status 503', { kind: 'status', status: 503 }, { failure: 'overloaded', status: 503 }],
      ['status 529', { kind: 'status', status: 529 }, { failure: 'overloaded', status: 529 }],
      ['status 401', { kind: 'status', status: 401 }, { failure: 'unauthorized', status: 401 }],
      ['status 403', { kind: 'status', status: 403 }, { failure: 'unauthorized', status: 403 }],
      ['garbage', { kind: 'garbage' }, { failure: 'malformed' }],
      ['context_too_long', { kind: 'context_too_long' }, { failure: 'context_too_long', status: 400 }],
      ['cut_stream', { kind: 'cut_stream', afterChunks: 2 }, { failure: 'connection' }],
    ];
    it.each(cases)('%s', async (_name, fault, expected) => {
      const fake = fakeFor(flavour);
      fake.setFault(fault);
      const hits = fake.chatHits;
      const seen: string[] = [];
      const failure = await failureOf(
        run(makeProvider(flavour, { openai, anthropic }), request, streaming, { seen }),
      );
      expect(failure).toMatchObject(expected);
      expect(fake.chatHits).toBe(hits + 1);
      // A cut stream delivered its first chunks before the socket went.
      if (fault.kind === 'cut_stream' && streaming) expect(seen).toHaveLength(2);
    });

    it('hang: the SDK timeout fires', async () => {
      fakeFor(flavour).setFault({ kind: 'hang' });
      const provider = makeProvider(flavour, { openai, anthropic }, { timeoutMs: 200 });
      expect(await failureOf(run(provider, request, streaming))).toMatchObject({ failure: 'timeout' });
    });

    it('slow_first_token: answers late; the caller can give up first', async () => {
      const fake = fakeFor(flavour);
      const provider = makeProvider(flavour, { openai, anthropic });
      fake.setFault({ kind: 'slow_first_token', delayMs: 300, times: 1 });
      const started = Date.now();
      const slow = await run(provider, request, streaming);
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
      expect(slow.result.finishReason).toBe('stop');

      fake.setFault({ kind: 'slow_first_token', delayMs: 1000 });
      const failure = await failureOf(
        run(provider, request, streaming, { signal: AbortSignal.timeout(150) }),
      );
      expect(failure).toMatchObject({ failure: 'aborted' });
    });

    it('times: the fault clears itself; hits count faulted requests', async () => {
      const fake = fakeFor(flavour);
      const provider = makeProvider(flavour, { openai, anthropic });
      const before = fake.hits;
      fake.setFault({ kind: 'status', status: 500, times: 2 });
      expect(await failureOf(run(provider, request, streaming))).toMatchObject({ failure: 'server_error' });
      expect(await failureOf(run(provider, request, streaming))).toMatchObject({ failure: 'server_error' });
      expect(fake.fault).toBeUndefined();
      const ok = await run(provider, request, streaming);
      expect(ok.result.text).toMatch(/echo: a reply long enough/);
      expect(fake.hits - before).toBe(3);
    });
  });

  it('probes are not faulted unless asked', async () => {
    const fake = fakeFor(flavour);
    const provider = makeProvider(flavour, { openai, anthropic });
    fake.setFault({ kind: 'status', status: 503 });
    await provider.probe();
    fake.setFault({ kind: 'status', status: 503, probes: true });
    expect(await failureOf(provider.probe())).toMatchObject({ failure: 'overloaded', status: 503 });
  });
});

describe('OpenAI rate-limit reset headers', () => {
  it.each([
    [{ resetHeader: '6m0s' }, 360_000],
    [{ resetHeader: '20ms' }, 20],
    [{ resetHeader: '1s', resetTokensHeader: '1m30s' }, 90_000],
  ])('%o -> retryAfterMs %d', async (headers, ms) => {
    openai.setFault({ kind: 'rate_limit', ...headers });
    const provider = makeProvider('openai', { openai, anthropic });
    expect(await failureOf(provider.complete(request))).toMatchObject({
      failure: 'rate_limited',
      retryAfterMs: ms,
    });
  });
});
