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

/**
 * Scenario 7: a provider that refuses its key (401/403) is disabled: `/api/status`, `/status`,
 * `/providers` and the log say so, it gets no further chat traffic, and the other provider answers.
 */
describe.each([
  ['OpenAI-format', 'openai', 401],
  ['Anthropic-format', 'anthropic', 401],
  ['OpenAI-format', 'openai', 403],
] as const)('%s primary answering %i', (_name, flavour, status) => {
  let fake: FakeOpenAi | FakeAnthropic;
  let backup: FakeOpenAi | FakeAnthropic;
  let test: GatewayAgent;

  beforeAll(async () => {
    const openai = await startFakeOpenAi({
      reply: taggedOpenAiReply(flavour === 'openai' ? 'primary' : 'backup'),
    });
    const anthropic = await startFakeAnthropic({
      reply: taggedAnthropicReply(flavour === 'anthropic' ? 'primary' : 'backup'),
    });
    [fake, backup] = flavour === 'openai' ? [openai, anthropic] : [anthropic, openai];
    const entries =
      flavour === 'openai'
        ? [openAiEntry('primary', openai.baseURL), anthropicEntry('backup', anthropic.baseURL)]
        : [anthropicEntry('primary', anthropic.baseURL), openAiEntry('backup', openai.baseURL)];
    test = await startGatewayAgent({
      providers: entries,
      // Frequent probes: they must not bring a disabled provider back either.
      gateway: { probeEveryMs: 150 },
    });
  });
  afterAll(async () => {
    await test?.stop();
    await fake?.close();
    await backup?.close();
  });

  it('disables the provider, says so everywhere, and sends it nothing more', async () => {
    fake.setFault({ kind: 'status', status });
    expect(await answer(test.url, 'key', 'hello')).toBe('backup: hello');
    expect(fake.chatHits).toBe(1);

    const state = await providerStatus(test.url, 'primary');
    expect(state.disabled).toBe(`key refused (HTTP ${status})`);
    expect(state.errors).toEqual({ unauthorized: 1 });
    expect(test.logs).toContainEqual(
      expect.objectContaining({
        level: 50,
        msg: 'provider refused its key; disabled until its configuration changes',
        provider: 'primary',
        failure: 'unauthorized',
        status,
      }),
    );
    const statusText = await answer(test.url, 'key', '/status');
    expect(statusText).toContain(`primary (primary-model) disabled: key refused (HTTP ${status})`);
    expect(statusText).toContain('backup (backup-model) healthy');
    expect(await answer(test.url, 'key', '/providers')).toMatch(
      new RegExp(
        `^primary \\(${flavour}, primary-model\\): circuit closed, DISABLED: key refused \\(HTTP ${status}\\)$`,
        'm',
      ),
    );
    const ready = (await (await fetch(`${test.url}/readyz`)).json()) as any;
    expect(ready.checks.providers).toBe('1/2 healthy');

    // Even with the fault gone (a fixed key needs a config change), across several probe rounds,
    // plain and streamed: no chat request reaches it.
    fake.setFault(undefined);
    for (const text of ['one', 'two']) expect(await answer(test.url, 'key', text)).toBe(`backup: ${text}`);
    const stream = await agentClient(test.url).chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'three' }],
      stream: true,
    });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    expect(streamed).toBe('backup: three');
    await sleep(400);
    expect(await answer(test.url, 'key', 'four')).toBe('backup: four');
    expect(fake.chatHits).toBe(1);
    expect((await providerStatus(test.url, 'primary')).disabled).toBe(`key refused (HTTP ${status})`);
  });
});
