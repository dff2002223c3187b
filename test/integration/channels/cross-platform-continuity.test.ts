import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDiscord, startFakeDiscord } from '../../fakes/fake-discord.js';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import {
  appMentionEvent,
  eventCallback,
  type FakeSlack,
  postSlackEvent,
  startFakeSlack,
} from '../../fakes/fake-slack.js';
import { type FakeTelegram, startFakeTelegram } from '../../fakes/fake-telegram.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { startTestAgent, type TestAgent } from '../../support/test-agent.js';

/** A real agent with the given `channels` config, answering through `llm` (echo). */
async function startAgentWithChannels(
  llm: FakeOpenAi,
  channels: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<TestAgent> {
  const dataDir = mkdtempSync(join(tmpdir(), 'channels-'));
  const configPath = join(dataDir, 'agent.config.json');
  writeFileSync(configPath, JSON.stringify({ channels }));
  return startTestAgent({
    AGENT_CONFIG: configPath,
    DATA_DIR: dataDir,
    OPENAI_BASE_URL: llm.baseURL,
    OPENAI_API_KEY: 'sk-test-channels',
    ...(process.env.DEBUG_LOG ? { LOG_LEVEL: process.env.DEBUG_LOG } : {}),
    ...env,
  });
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const TG_USER = 100;
const DC_USER = '200';
const FAILOVER_AFTER_MS = 1000;

describe.each([{ backend: 'local logs' }, { backend: 'Redis and BullMQ' }])(
  'one person across Telegram and Discord, through the real libraries and a real agent ($backend)',
  ({ backend }) => {
    let redis: TestRedis | undefined;
    let llm: FakeOpenAi;
    let telegram: FakeTelegram;
    let discord: FakeDiscord;
    let test: TestAgent;
    let dm: string;

    beforeAll(async () => {
      llm = await startFakeOpenAi();
      telegram = await startFakeTelegram();
      discord = await startFakeDiscord();
      dm = discord.dmChannelFor(DC_USER);
      redis = backend === 'local logs' ? undefined : await startRedis();
      test = await startAgentWithChannels(
        llm,
        {
          telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 },
          discord: { botToken: discord.token, apiRoot: discord.apiRoot },
          outbox: { failoverAfterMs: FAILOVER_AFTER_MS, retryBaseMs: 100, retryMaxMs: 400 },
        },
        redis ? { REDIS_URL: redis.url } : {},
      );
      await until('both channels connected', () => {
        const status = test.agent.channels?.status();
        return status?.telegram?.connected && status?.discord?.connected;
      });
    });

    afterAll(async () => {
      await test.agent.stop();
      await Promise.all([llm.close(), telegram.close(), discord.close()]);
      await redis?.stop();
    });

    const telegramReplies = () => telegram.sent.filter((m) => m.chatId === TG_USER);
    const discordReplies = () => discord.sent.filter((m) => m.channelId === dm);

    it('talks on Telegram, links Discord, gets the reply on Discord while Telegram is down, and Telegram again once it is back', async () => {
      // 1. A conversation on Telegram.
      telegram.pushText(TG_USER, TG_USER, 'my name is Ada');
      await until('the first Telegram reply', () => telegramReplies().length === 1);
      expect(telegramReplies()[0]?.text).toBe('echo: my name is Ada');

      // 2. Link Discord to it.
      telegram.pushText(TG_USER, TG_USER, '/link');
      const codeMessage = await until('a link code', () => telegramReplies()[1]);
      const code = /link code is ([A-Z2-9]{8})/.exec(codeMessage.text)?.[1] as string;
      expect(code).toMatch(/^[A-Z2-9]{8}$/);
      discord.sendMessageCreate({ channelId: dm, authorId: DC_USER, content: `/link ${code}` });
      await until('the link confirmation on Discord', () => discordReplies()[0]);
      expect(discordReplies()[0]?.content).toContain('Linked');

      // 3. A Telegram message whose answer is slow; Telegram goes down before the answer is ready.
      llm.setFault({ kind: 'slow_first_token', delayMs: 800, times: 1 });
      const chatHitsBefore = llm.chatHits;
      telegram.pushText(TG_USER, TG_USER, 'what is my name?');
      await until('the question to reach the provider', () => llm.chatHits > chatHitsBefore);
      const downAt = Date.now();
      await telegram.down();

      const failedOver = await until('the reply on Discord', () => discordReplies()[1]);
      const waited = Date.now() - downAt;
      expect(failedOver.content).toBe(
        '(Telegram is unreachable right now, so this reply comes here.)\necho: what is my name?',
      );
      // It waited for Telegram at least the failover time, and no longer than a few retries past it.
      expect(waited).toBeGreaterThanOrEqual(FAILOVER_AFTER_MS - 50);
      // The earlier conversation (from Telegram) was the context of the answer given on Discord.
      const context = llm.requests.at(-1)?.body.messages.map((m: { content: unknown }) => m.content);
      expect(context).toEqual(
        expect.arrayContaining(['my name is Ada', 'echo: my name is Ada', 'what is my name?']),
      );

      // 4. Telegram comes back: the next Telegram message is answered on Telegram again.
      await telegram.up();
      await until('Telegram to reconnect', () => test.agent.channels?.status().telegram?.connected);
      // Quick replies showed no typing indicator; a slow one does, while it runs.
      expect(telegram.actions.filter((a) => a.chatId === TG_USER)).toEqual([]);
      llm.setFault({ kind: 'slow_first_token', delayMs: 1500, times: 1 });
      telegram.pushText(TG_USER, TG_USER, 'back on Telegram');
      await until('a typing indicator', () =>
        telegram.actions.find((a) => a.chatId === TG_USER && a.action === 'typing'),
      );
      await until('the reply on Telegram', () =>
        telegramReplies().find((m) => m.text === 'echo: back on Telegram'),
      );

      // 5. Counted end to end: five messages in, five replies out, none twice, none lost.
      await sleep(300);
      const all = [...telegramReplies().map((m) => m.text), ...discordReplies().map((m) => m.content)];
      expect(all).toHaveLength(5);
      expect(new Set(all).size).toBe(5);
      expect(await test.agent.channels?.pending()).toEqual({ inbox: 0, outbox: 0 });
      const metrics = await (await fetch(`${test.url}/metrics`)).text();
      expect(metrics).toMatch(/agent_reply_deliveries_total\{channel="telegram",outcome="failed_over"\} 1/);
    });
  },
);

describe('a platform that cannot connect', () => {
  it('leaves the other channels working, and says so in /status', async () => {
    const llm = await startFakeOpenAi();
    const telegram = await startFakeTelegram();
    const discord = await startFakeDiscord();
    await discord.down();
    const test = await startAgentWithChannels(llm, {
      telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 },
      discord: { botToken: discord.token, apiRoot: discord.apiRoot },
    });
    try {
      telegram.pushText(7, 7, 'hello while Discord is down');
      await until('the Telegram reply', () =>
        telegram.sent.find((m) => m.text === 'echo: hello while Discord is down'),
      );
      telegram.pushText(7, 7, '/status');
      const status = await until('the status reply', () =>
        telegram.sent.find((m) => m.text.includes('channels:')),
      );
      expect(status.text).toMatch(/telegram connected/);
      expect(status.text).toMatch(/discord disconnected/);
      const api = (await (await fetch(`${test.url}/api/status`)).json()) as {
        channels: Record<string, { connected: boolean; lastError?: string }>;
      };
      expect(api.channels.telegram?.connected).toBe(true);
      expect(api.channels.discord?.connected).toBe(false);
      expect(api.channels.discord?.lastError).toBeTruthy();
    } finally {
      await test.agent.stop();
      await Promise.all([llm.close(), telegram.close(), discord.close()]);
    }
  });
});

describe('Slack through a real agent', () => {
  let llm: FakeOpenAi;
  let slack: FakeSlack;
  let test: TestAgent;
  const secret = 'slack-signing-secret-for-tests';

  beforeAll(async () => {
    llm = await startFakeOpenAi();
    slack = await startFakeSlack();
    test = await startAgentWithChannels(llm, {
      slack: { botToken: slack.botToken, signingSecret: secret, apiUrl: slack.apiUrl },
    });
    await until('Slack connected', () => test.agent.channels?.status().slack?.connected);
  });
  afterAll(async () => {
    await test.agent.stop();
    await Promise.all([llm.close(), slack.close()]);
  });

  it('answers a signed mention in its thread, once, even when Slack redelivers it', async () => {
    const body = eventCallback({
      event: appMentionEvent({ user: 'U1', text: `<@${slack.botUserId}> hello from Slack`, channel: 'C1' }),
      botUserId: slack.botUserId,
    });
    const first = await postSlackEvent(`${test.url}/slack/events`, secret, body);
    expect(first.status).toBe(200);
    const reply = await until('the Slack reply', () => slack.posted.find((m) => m.channel === 'C1'));
    expect(reply.text).toBe('echo: hello from Slack');
    expect(reply.thread_ts).toBe((body.event as { ts: string }).ts);
    // Slack's retry of the same event is answered from the dedupe, not a second post.
    const retry = await postSlackEvent(`${test.url}/slack/events`, secret, body, { retryNum: 1 });
    expect(retry.status).toBe(200);
    await sleep(300);
    expect(slack.posted.filter((m) => m.channel === 'C1')).toHaveLength(1);
  });

  it('refuses a request with a bad signature and changes nothing', async () => {
    const hitsBefore = llm.chatHits;
    const body = eventCallback({
      event: appMentionEvent({ user: 'U2', text: `<@${slack.botUserId}> forged`, channel: 'C2' }),
      botUserId: slack.botUserId,
    });
    const forged = await postSlackEvent(`${test.url}/slack/events`, secret, body, {
      wrongSecret: 'not-the-secret-at-all',
    });
    expect(forged.status).toBe(401);
    await sleep(300);
    expect(llm.chatHits).toBe(hitsBefore);
    expect(slack.posted.filter((m) => m.channel === 'C2')).toHaveLength(0);
    expect(await test.agent.channels?.pending()).toEqual({ inbox: 0, outbox: 0 });
  });
});
