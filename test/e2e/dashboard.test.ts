import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/load-config.js';
import { type Agent, createAgent } from '../../src/core/create-agent.js';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { openAiEntry, taggedOpenAiReply, writeConfigFile } from '../integration/gateway/gateway-harness.js';
import { launchChromium } from '../support/chromium.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { postMessage } from '../support/test-agent.js';

/**
 * The status page in a real (headless) Chromium against an in-process agent with two fake OpenAI
 * providers, Redis and API tokens: the page asks for the token, shows every section, and follows
 * the primary's circuit breaker opening without a reload.
 */

const TOKEN = 'dashboard-e2e-token-0123456789abcdef';
const THRESHOLD = 3;
const NODE = 'dash-node-1';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let browser: Browser;
let redis: TestRedis;
let primary: FakeOpenAi;
let secondary: FakeOpenAi;
let agent: Agent;
let url: string;
let dir: string;

beforeAll(async () => {
  browser = await launchChromium();
  redis = await startRedis();
  primary = await startFakeOpenAi({ reply: taggedOpenAiReply('primary') });
  secondary = await startFakeOpenAi({ reply: taggedOpenAiReply('secondary') });
  dir = mkdtempSync(join(tmpdir(), 'agent-dashboard-'));
  const config = loadConfig({
    cwd: dir,
    env: {
      HTTP_PORT: '0',
      DATA_DIR: join(dir, 'data'),
      LOCAL_LLM_PROBE: 'false',
      LOG_LEVEL: 'silent',
      HTTP_AUTH_TOKENS: TOKEN,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `dash${Date.now()}`,
      NODE_ID: NODE,
      AGENT_CONFIG: writeConfigFile({
        providers: [openAiEntry('primary', primary.baseURL), openAiEntry('secondary', secondary.baseURL)],
        gateway: {
          // No probe during the test: only chat failures move the breaker.
          probeEveryMs: 600_000,
          breaker: {
            consecutiveFailures: THRESHOLD,
            minimumCalls: 100,
            windowSize: 100,
            halfOpenAfterMs: 600_000,
          },
        },
        budgets: { perProvider: { primary: { dailyUsd: 5, monthlyUsd: 50 } } },
        alerts: { checkEveryMs: 500 },
      }),
    },
  });
  agent = await createAgent(config);
  url = await agent.start();
});

afterAll(async () => {
  await browser?.close();
  await agent?.stop();
  await primary?.close();
  await secondary?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the status of the page's next `/api/dashboard` request once `action` ran. */
async function nextPoll(page: Page, action: () => Promise<unknown>): Promise<number> {
  const response = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/dashboard');
  await action();
  return (await response).status();
}

async function say(text: string): Promise<string> {
  const { status, body } = await postMessage(url, 'dash', { text }, AUTH);
  if (status !== 200) throw new Error(`expected 200, got ${status}: ${JSON.stringify(body)}`);
  return body.reply.text as string;
}

const cellText = (page: Page, selector: string) => page.locator(selector).textContent();

describe('status dashboard in Chromium', () => {
  it('is public, but its data needs the token', async () => {
    const pageResponse = await fetch(`${url}/dashboard`);
    expect(pageResponse.status).toBe(200);
    expect(pageResponse.headers.get('content-type')).toContain('text/html');
    expect(await pageResponse.text()).toContain('<script src="/dashboard.js" type="module">');
    for (const file of ['/dashboard.js', '/dashboard.css'])
      expect((await fetch(`${url}${file}`)).status).toBe(200);
    expect((await fetch(`${url}/api/dashboard`)).status).toBe(401);
    expect((await fetch(`${url}/api/dashboard`, { headers: AUTH })).status).toBe(200);
  });

  it('shows every section, live, and the primary turning from healthy to open without a reload', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      let navigations = 0;
      page.on('framenavigated', (frame) => {
        if (frame === page.mainFrame()) navigations++;
      });

      expect(await nextPoll(page, () => page.goto(`${url}/dashboard`))).toBe(401);
      await page.locator('#token-panel').waitFor({ state: 'visible' });
      await page.fill('#token', TOKEN);
      expect(await nextPoll(page, () => page.click('#save-token'))).toBe(200);
      await expect(page.locator('#token-panel').isHidden()).resolves.toBe(true);

      // Providers: both healthy, with the primary's budget beside its cost.
      const primaryRow = 'tr[data-provider="primary"]';
      await page.locator(`${primaryRow}[data-health="healthy"]`).waitFor();
      await page.locator('tr[data-provider="secondary"][data-health="healthy"]').waitFor();
      expect(await cellText(page, `${primaryRow} .health`)).toBe('healthy');
      expect(await cellText(page, `${primaryRow} td:nth-child(7)`)).toBe('$0.00 / $5.00');
      expect(await cellText(page, `${primaryRow} td:nth-child(8)`)).toMatch(/ \/ \$50\.00$/);

      // Channels: the HTTP channel, connected.
      await page.locator('#channels tr[data-channel="http"]', { hasText: 'connected' }).waitFor();
      // Nodes: this node, up, with its heartbeat age.
      const nodeRow = page.locator(`#nodes tr[data-node="${NODE}"]`);
      await nodeRow.waitFor();
      expect(await nodeRow.textContent()).toMatch(
        new RegExp(`^${NODE} \\(this node\\)upstandbynone\\d+\\.\\d s ago$`),
      );
      // Redis: reachable, on the test server's port, nothing waiting in the write-ahead log.
      await page.locator('#redis[data-reachable="true"]').waitFor();
      const redisText = await page.locator('#redis').textContent();
      expect(redisText).toContain(`Primary127.0.0.1:${redis.port}`);
      expect(redisText).toContain('Write-ahead pending0');
      expect(redisText).toContain('Replicationmaster, 0 replica(s)');
      // Jobs: the incident watch (every 500 ms) has run, with its outcome.
      await page.locator('#jobs tr[data-job="incident-watch"]', { hasText: 'ok' }).waitFor();
      // The chart: hand-drawn SVG, nothing drawn before any traffic.
      await expect(page.locator('#requests-chart').textContent()).resolves.toContain('no traffic yet');
      expect(await page.locator('#cost-chart line.axis').count()).toBe(2);

      const dashboard = (await (await fetch(`${url}/api/dashboard`, { headers: AUTH })).json()) as {
        jobs: { name: string; everyMs?: number; lastRunAt?: number; nextRunAt?: number }[];
      };
      const watch = dashboard.jobs.find((j) => j.name === 'incident-watch');
      expect(watch?.everyMs).toBe(500);
      expect(watch?.lastRunAt).toBeGreaterThan(0);
      expect(watch?.nextRunAt).toBe((watch?.lastRunAt ?? 0) + 500);

      // A few messages: the primary answers, and the page counts them without a reload.
      for (let i = 1; i <= 2; i++) expect(await say(`hello ${i}`)).toBe(`primary: hello ${i}`);
      await expect.poll(() => cellText(page, `${primaryRow} td:nth-child(5)`), { timeout: 10_000 }).toBe('2');
      await page.locator('#requests-chart polyline[data-provider="primary"]').waitFor();
      expect(await page.locator('#requests-chart polyline').count()).toBe(1);
      expect(await page.locator('#usage-legend').textContent()).toContain('primary: 2 requests');
      expect(await page.locator('#usage-source').textContent()).toContain('every node (Redis)');

      // Break the primary: 500 on everything, until its breaker opens after THRESHOLD failures.
      primary.setFault({ kind: 'status', status: 500, probes: true });
      for (let i = 1; i <= THRESHOLD; i++) expect(await say(`fail ${i}`)).toBe(`secondary: fail ${i}`);
      expect(primary.chatHits).toBe(2 + THRESHOLD);

      await page.locator(`${primaryRow}[data-health="open"]`).waitFor({ timeout: 10_000 });
      expect(await cellText(page, `${primaryRow} .health`)).toBe('open');
      expect(await page.locator(`${primaryRow} .health`).getAttribute('class')).toContain('bad');
      expect(await page.locator('tr[data-provider="secondary"]').getAttribute('data-health')).toBe('healthy');
      await expect
        .poll(() => cellText(page, `${primaryRow} td:nth-child(6)`), { timeout: 10_000 })
        .toBe(String(THRESHOLD));
      // The chart now has the secondary too, and the primary's errors are in the history.
      await page.locator('#requests-chart polyline[data-provider="secondary"]').waitFor();

      expect(navigations).toBe(1);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
