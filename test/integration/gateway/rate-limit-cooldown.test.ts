import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../../fakes/fake-anthropic.js';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import {
  agentClient,
  answer,
  anthropicEntry,
  type GatewayAgent,
  openAiEntry,
  providerStatus,
  sleep,
  startGatewayAgent,
  taggedAnthropicReply,
  taggedOpenAiReply,
} from './gateway-harness.js';

/** Scenario 1: a 429 with a retry time sends the primary nothing until that time has passed. */
describe('429 with retry-after on the primary', () => {
  let primary: FakeOpenAi;
  let secondary: FakeAnthropic;
  let test: GatewayAgent;

  beforeAll(async () => {
    primary = await startFakeOpenAi({ reply: taggedOpenAiReply('primary') });
    secondary = await startFakeAnthropic({ reply: taggedAnthropicReply('secondary') });
    test = await startGatewayAgent({
      providers: [openAiEntry('primary', primary.baseURL), anthropicEntry('secondary', secondary.baseURL)],
      // No probe during the test: probes never carry chat traffic, but keep the counts simple.
      gateway: { probeEveryMs: 600_000, defaultCooldownMs: 60_000 },
    });
  });
  afterAll(async () => {
    await test?.stop();
    await primary?.close();
    await secondary?.close();
  });

  it('is answered by the secondary; the primary gets no chat traffic until retry-after has passed', async () => {
    expect(await answer(test.url, 'rl', 'warm up')).toBe('primary: warm up');

    primary.setFault({ kind: 'rate_limit', retryAfterSeconds: 2 });
    const sentAt = Date.now();
    expect(await answer(test.url, 'rl', 'first')).toBe('secondary: first');
    expect(primary.chatHits).toBe(2);
    expect(primary.requests.at(-1)?.fault).toBe('rate_limit');
    // The fault stays on: any request that reached the primary now would be answered 429 and counted.

    const status = await providerStatus(test.url, 'primary');
    expect(status.cooldownUntil).toBeDefined();
    const cooldownUntil = status.cooldownUntil as number;
    // retry-after: 2 (seconds), not the 60 s default cooldown.
    expect(cooldownUntil).toBeGreaterThanOrEqual(sentAt + 2000);
    expect(cooldownUntil).toBeLessThanOrEqual(Date.now() + 2000);
    expect(status.errors).toEqual({ rate_limited: 1 });

    const providers = await answer(test.url, 'rl', '/providers');
    expect(providers).toMatch(
      /^primary \(openai, primary-model\): circuit closed, rate-limited for [12] s$/m,
    );

    // During the cooldown: plain and streamed requests all go to the secondary.
    for (const text of ['second', 'third']) {
      expect(await answer(test.url, 'rl', text)).toBe(`secondary: ${text}`);
    }
    const stream = await agentClient(test.url).chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'streamed' }],
      stream: true,
    });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    expect(streamed).toBe('secondary: streamed');
    // These all finished inside the cooldown, so they prove something.
    expect(Date.now()).toBeLessThan(cooldownUntil);
    expect(primary.chatHits).toBe(2);

    // After it: the primary is used again (its fault is cleared so it can answer).
    primary.setFault(undefined);
    await sleep(cooldownUntil - Date.now() + 50);
    expect((await providerStatus(test.url, 'primary')).cooldownUntil).toBeUndefined();
    expect(await answer(test.url, 'rl', 'after')).toBe('primary: after');
    expect(primary.chatHits).toBe(3);
  });

  it('honours retry-after-ms on a streamed request through the OpenAI-compatible API', async () => {
    const before = primary.chatHits;
    primary.setFault({ kind: 'rate_limit', retryAfterMs: 1500 });
    const client = agentClient(test.url);
    const first = await client.chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'one' }],
      stream: true,
    });
    let text = '';
    let model = '';
    for await (const chunk of first) {
      text += chunk.choices[0]?.delta?.content ?? '';
      model = chunk.model;
    }
    expect(model).toBe('secondary/secondary-model');
    expect(text).toBe('secondary: one');
    expect(primary.requests.at(-1)).toMatchObject({ fault: 'rate_limit', body: { stream: true } });
    const { cooldownUntil } = await providerStatus(test.url, 'primary');
    expect(cooldownUntil).toBeDefined();

    const again = await client.chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'two' }],
    });
    expect(again.model).toBe('secondary/secondary-model');
    expect(Date.now()).toBeLessThan(cooldownUntil as number);
    expect(primary.chatHits).toBe(before + 1);

    primary.setFault(undefined);
    await sleep((cooldownUntil as number) - Date.now() + 50);
    const later = await client.chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'three' }],
    });
    expect(later.model).toBe('primary/primary-model');
    expect(primary.chatHits).toBe(before + 2);
  });
});
