import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/load-config.js';
import { type Agent, createAgent } from '../../src/core/create-agent.js';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { launchChromium } from '../support/chromium.js';

/**
 * The web chat in a real (headless) Chromium against an in-process agent whose provider is the
 * fake OpenAI server: what a person sees in the page, not just what the API returns.
 */

const TOKEN = 'web-chat-e2e-token-0123456789abcdef';

let browser: Browser;

interface Setup {
  dir: string;
  fake: FakeOpenAi;
  agent: Agent;
  url: string;
  context: BrowserContext;
  page: Page;
}
let current: Partial<Setup> = {};

beforeAll(async () => {
  browser = await launchChromium();
});

afterEach(async () => {
  const { context, agent, fake, dir } = current;
  current = {};
  await context?.close().catch(() => {});
  await agent?.stop();
  await fake?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await browser?.close();
});

async function setup(env: Record<string, string> = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-web-chat-'));
  current.dir = dir;
  const fake = await startFakeOpenAi();
  current.fake = fake;
  const config = loadConfig({
    cwd: dir,
    env: {
      HTTP_PORT: '0',
      DATA_DIR: join(dir, 'data'),
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
      LOCAL_LLM_PROBE: 'false',
      LOG_LEVEL: 'silent',
      ...env,
    },
  });
  const agent = await createAgent(config);
  current.agent = agent;
  const url = await agent.start();
  // A fresh context per test: its own localStorage, so no conversation id or token carries over.
  const context = await browser.newContext();
  current.context = context;
  const page = await context.newPage();
  return { dir, fake, agent, url, context, page };
}

/** Opens (or reloads) the page and resolves with the status of its initial history request. */
async function openPage(page: Page, action: () => Promise<unknown>): Promise<number> {
  const history = page.waitForResponse(
    (r) => r.request().method() === 'GET' && /\/api\/conversations\/[^/]+\/messages/.test(r.url()),
  );
  await action();
  return (await history).status();
}

/** Waits for the agent bubble holding `text` to finish streaming, and returns its exact text. */
async function agentReply(page: Page, text: string): Promise<string> {
  const bubble = page.locator('.message.agent[data-state="done"]', { hasText: text });
  await bubble.waitFor({ timeout: 15_000 });
  return (await bubble.textContent()) ?? '';
}

describe('web chat in Chromium', () => {
  it('round-trips messages, sends earlier turns as context, and shows the history after a reload', async () => {
    const { fake, url, page } = await setup();
    expect(await openPage(page, () => page.goto(url))).toBe(200);
    await expect(page.locator('#token-panel').isHidden()).resolves.toBe(true);

    // First message: Enter in the textarea sends it.
    await page.fill('#message', 'hello there');
    await page.press('#message', 'Enter');
    expect(await agentReply(page, 'echo: hello there')).toBe('echo: hello there');
    expect(await page.inputValue('#message')).toBe('');

    // Second message: the Send button.
    await page.fill('#message', 'second message');
    await page.click('#send');
    expect(await agentReply(page, 'echo: second message')).toBe('echo: second message');

    expect(fake.requests).toHaveLength(2);
    const second = fake.requests[1]?.body;
    expect(second?.model).toBe('fake-model');
    expect(second?.stream).toBe(true);
    const turns = second?.messages.filter((m) => m.role !== 'system');
    expect(turns).toEqual([
      { role: 'user', content: 'hello there' },
      { role: 'assistant', content: 'echo: hello there' },
      { role: 'user', content: 'second message' },
    ]);

    // A reload keeps the conversation id (localStorage) and shows both turns from the server.
    expect(await openPage(page, () => page.reload())).toBe(200);
    const messages = page.locator('#log .message');
    await expect.poll(() => messages.count()).toBe(4);
    expect(await messages.evaluateAll((els) => els.map((e) => [e.className, e.textContent]))).toEqual([
      ['message user', 'hello there'],
      ['message agent', 'echo: hello there'],
      ['message user', 'second message'],
      ['message agent', 'echo: second message'],
    ]);
    expect(fake.requests).toHaveLength(2);
  });

  it('asks for the token when the API needs one, then chats with it', async () => {
    const { fake, url, page } = await setup({ HTTP_AUTH_TOKENS: TOKEN });
    expect(await openPage(page, () => page.goto(url))).toBe(401);
    await page.locator('#token-panel').waitFor({ state: 'visible' });

    await page.fill('#token', TOKEN);
    // Saving reloads the history with the token; that request must now succeed.
    expect(await openPage(page, () => page.click('#save-token'))).toBe(200);
    await expect(page.locator('#token-panel').isHidden()).resolves.toBe(true);

    await page.fill('#message', 'with a token');
    await page.press('#message', 'Enter');
    expect(await agentReply(page, 'echo: with a token')).toBe('echo: with a token');
    expect(fake.requests).toHaveLength(1);
    await expect(page.locator('#token-panel').isHidden()).resolves.toBe(true);
    await expect(page.locator('.message.error').count()).resolves.toBe(0);
  });
});
