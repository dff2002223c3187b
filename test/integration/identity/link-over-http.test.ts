import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import { postMessage, startTestAgent, type TestAgent } from '../../support/test-agent.js';

describe('/link and /unlink through the agent', () => {
  let fake: FakeOpenAi;
  let test: TestAgent;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    test = await startTestAgent({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: 'sk-test-link-key' });
  });
  afterAll(async () => {
    await test.agent.stop();
    await fake.close();
  });

  it('continues one conversation from a linked account, keeps the other history apart, and unlinks', async () => {
    await postMessage(test.url, 'home', { text: 'my name is Ada' });
    await postMessage(test.url, 'away', { text: 'I said this before linking' });

    const issued = await postMessage(test.url, 'home', { text: '/link' });
    const code = /link code is ([A-Z2-9]{8})/.exec(issued.body.reply.text)?.[1];
    expect(code).toBeDefined();

    const linked = await postMessage(test.url, 'away', { text: `/link ${code}` });
    expect(linked.body.reply.text).toContain('Linked');
    // Never merged silently: the account's earlier turn is named and left behind.
    expect(linked.body.reply.text).toContain('(1 turn) stays separate');

    await postMessage(test.url, 'away', { text: 'what is my name?' });
    const context = fake.requests.at(-1)?.body.messages.map((m: { content: unknown }) => m.content);
    expect(context).toContain('my name is Ada');
    expect(context).not.toContain('I said this before linking');

    // A used code does nothing the second time.
    const reused = await postMessage(test.url, 'third', { text: `/link ${code}` });
    expect(reused.body.reply.text).toContain('unknown, already used or expired');

    expect((await postMessage(test.url, 'away', { text: '/unlink' })).body.reply.text).toContain('Unlinked');
    await postMessage(test.url, 'away', { text: 'and now?' });
    const after = fake.requests.at(-1)?.body.messages.map((m: { content: unknown }) => m.content);
    expect(after).toContain('I said this before linking');
    expect(after).not.toContain('my name is Ada');
  });
});
