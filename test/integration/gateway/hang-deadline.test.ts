import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../../fakes/fake-anthropic.js';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import {
  agentClient,
  anthropicEntry,
  ask,
  type GatewayAgent,
  openAiEntry,
  startGatewayAgent,
  taggedAnthropicReply,
  taggedOpenAiReply,
} from './gateway-harness.js';

/**
 * Scenario 3: a hung primary is given up after `attemptTimeoutMs` (or, streamed,
 * `firstTokenDeadlineMs`) and the next provider answers within `deadlineMs`; and the deadline
 * bounds the whole request even when one attempt alone could outlast it.
 *
 * Each provider's own SDK timeout is 10 s, so only the gateway's clocks can explain an answer
 * inside the bounds asserted here. The bounds are the configured deadlines plus generous slack
 * for a loaded machine; the fakes answer in a few milliseconds otherwise.
 */
const DEADLINE_MS = 1500;
const SLACK_MS = 2500;

let primary: FakeOpenAi;
let secondary: FakeAnthropic;

beforeAll(async () => {
  primary = await startFakeOpenAi({ reply: taggedOpenAiReply('primary') });
  secondary = await startFakeAnthropic({ reply: taggedAnthropicReply('secondary') });
});
afterEach(() => {
  primary.setFault(undefined);
  secondary.setFault(undefined);
});
afterAll(async () => {
  await primary?.close();
  await secondary?.close();
});

describe('a hung primary', () => {
  let test: GatewayAgent;
  beforeAll(async () => {
    test = await startGatewayAgent({
      providers: [openAiEntry('primary', primary.baseURL), anthropicEntry('secondary', secondary.baseURL)],
      gateway: {
        attemptTimeoutMs: 500,
        firstTokenDeadlineMs: 500,
        deadlineMs: DEADLINE_MS,
        probeEveryMs: 600_000,
      },
    });
  });
  afterAll(async () => {
    await test?.stop();
  });

  it('is answered by the secondary within the deadline (JSON API)', async () => {
    primary.setFault({ kind: 'hang' });
    const hits = primary.chatHits;
    const started = Date.now();
    const { status, body } = await ask(test.url, 'hang', 'are you there');
    const elapsed = Date.now() - started;
    expect(status).toBe(200);
    expect(body.reply.text).toBe('secondary: are you there');
    expect(primary.chatHits).toBe(hits + 1);
    // It waited for the primary's attempt, then answered well inside the 10 s SDK timeout.
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(DEADLINE_MS + SLACK_MS);
    expect(test.logs).toContainEqual(
      expect.objectContaining({
        msg: 'provider call failed; failing over',
        provider: 'primary',
        failure: 'timeout',
      }),
    );
  });

  it('is answered by the secondary within the deadline (streamed, OpenAI-compatible API)', async () => {
    primary.setFault({ kind: 'hang' });
    const started = Date.now();
    const stream = await agentClient(test.url).chat.completions.create({
      model: 'auto',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
    });
    let text = '';
    let model = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      model = chunk.model;
    }
    const elapsed = Date.now() - started;
    expect(text).toBe('secondary: stream please');
    expect(model).toBe('secondary/secondary-model');
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });

  it('answers 502 provider_unavailable within the deadline when every provider hangs', async () => {
    primary.setFault({ kind: 'hang' });
    secondary.setFault({ kind: 'hang' });
    const started = Date.now();
    const { status, body } = await ask(test.url, 'hang', 'anyone?');
    const elapsed = Date.now() - started;
    expect(status).toBe(502);
    expect(body.error.code).toBe('provider_unavailable');
    expect(body.error.message).toMatch(/primary: timeout.*secondary: timeout/);
    expect(elapsed).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });
});

describe('the request deadline', () => {
  let test: GatewayAgent;
  beforeAll(async () => {
    test = await startGatewayAgent({
      providers: [openAiEntry('primary', primary.baseURL), anthropicEntry('secondary', secondary.baseURL)],
      // One attempt may take 6 s, but the whole request only DEADLINE_MS: without the deadline
      // this would take 6 s and then be answered by the secondary.
      gateway: { attemptTimeoutMs: 6000, deadlineMs: DEADLINE_MS, probeEveryMs: 600_000 },
    });
  });
  afterAll(async () => {
    await test?.stop();
  });

  it('ends a request whose primary hangs at deadlineMs, with a clear error', async () => {
    primary.setFault({ kind: 'hang' });
    const secondaryHits = secondary.chatHits;
    const started = Date.now();
    const { status, body } = await ask(test.url, 'deadline', 'too slow');
    const elapsed = Date.now() - started;
    expect(status).toBe(502);
    expect(body.error.code).toBe('provider_unavailable');
    // The attempt's timer and the deadline fire together; either may be first to name the cause.
    expect(body.error.message).toMatch(new RegExp(`^no LLM provider answered within ${DEADLINE_MS} ms`));
    expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect(elapsed).toBeLessThan(DEADLINE_MS + SLACK_MS);
    expect(secondary.chatHits).toBe(secondaryHits);
  });
});
