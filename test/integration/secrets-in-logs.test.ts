import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDiscord, startFakeDiscord } from '../fakes/fake-discord.js';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { eventCallback, type FakeSlack, messageEvent, startFakeSlack } from '../fakes/fake-slack.js';
import { type FakeTelegram, startFakeTelegram } from '../fakes/fake-telegram.js';
import { type AgentProcess, startAgentProcess } from '../support/agent-process.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { until } from '../support/until.js';

/**
 * Every kind of secret the agent knows, each distinctive so a leak cannot hide. Some carry
 * characters that JSON escapes (`"`, `\`) or that a URL percent-encodes (`/`, `@`, `:`), so a
 * leak in either form is caught too.
 */
const SECRETS = {
  alphaKey: 'sk-alpha-"Qx7\\Lm2Vp9Zr4Kt8Wn"-leakcheck',
  betaKey: 'sk-beta-Hy6Jd3Fs8Bn1Cq5Xe-leakcheck',
  httpToken: 'httptok-Pm4Rz8Lq2Wv6Ny1Dx',
  httpToken2: 'httptok-second-Ga5Ue9Ok3Ij7',
  redisPassword: 'rd-Pw"q/u@t&e%9Zk:leak',
  telegramToken: '987654321:TgSecret_Zq8Wm3Np7Rx2Lk5Vb',
  telegramWebhookSecret: 'tg_webhook-Sec7Ret3Xy9Qw2',
  discordToken: 'OTg3NjU0MzIxMDk4NzY1NDMy.dscSec.Wq4Er8Ty2Ui6Op0-leakcheck',
  slackBotToken: 'xoxb-slackbot-Mn3Bv7Cx1Za5-leakcheck',
  slackAppToken: 'xapp-slackapp-Lk9Jh4Gf8Ds2-leakcheck',
  slackSigningSecret: 'slack-signing-Po6Iu1Yt5Re9-leakcheck',
} as const;

/**
 * Each form a secret could take in a log line: as is, JSON-escaped (once, or twice inside a JSON
 * body logged as a string), percent-encoded.
 */
function forms(secret: string): string[] {
  const json = (s: string) => JSON.stringify(s).slice(1, -1);
  const pct = encodeURIComponent(secret);
  return [...new Set([secret, json(secret), json(json(secret)), pct, json(pct)])];
}

interface LogLine {
  level: number;
  msg?: string;
  turn?: string;
  reqId?: string;
  err?: unknown;
  [field: string]: unknown;
}

function parseLines(output: readonly string[]): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of output) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // Not a log line.
    }
  }
  return lines;
}

describe('a full run at debug level logs no configured secret, and ties each message to one turn id', () => {
  let alpha: FakeOpenAi;
  let beta: FakeOpenAi;
  let telegram: FakeTelegram;
  let discord: FakeDiscord;
  let slack: FakeSlack;
  let redis: TestRedis;
  let agent: AgentProcess;
  let dir: string;
  /** Every line the agent printed, stdout and stderr, kept after it stopped. */
  let output: string[] = [];
  let lines: LogLine[] = [];
  let telegramTurn = '';

  const auth = { authorization: `Bearer ${SECRETS.httpToken}` };
  const postHttp = (conversation: string, text: string, eventId: string, headers = auth) =>
    fetch(`${agent.url}/api/conversations/${conversation}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ text, eventId }),
    });

  beforeAll(async () => {
    alpha = await startFakeOpenAi();
    beta = await startFakeOpenAi();
    telegram = await startFakeTelegram({ token: SECRETS.telegramToken });
    discord = await startFakeDiscord({ token: SECRETS.discordToken });
    slack = await startFakeSlack({ botToken: SECRETS.slackBotToken, appToken: SECRETS.slackAppToken });
    redis = await startRedis({ password: SECRETS.redisPassword });
    dir = mkdtempSync(join(tmpdir(), 'agent-secrets-'));
    const configPath = join(dir, 'agent.config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        providers: [
          { id: 'alpha', kind: 'openai', baseURL: alpha.baseURL, model: 'fake-model' },
          { id: 'beta', kind: 'openai', baseURL: beta.baseURL, model: 'fake-model' },
        ],
        channels: { outbox: { retryBaseMs: 100, retryMaxMs: 1000 } },
      }),
    );
    agent = await startAgentProcess(
      {
        AGENT_CONFIG: configPath,
        DATA_DIR: join(dir, 'data'),
        LOG_LEVEL: 'debug',
        PROVIDER_ALPHA_API_KEY: SECRETS.alphaKey,
        PROVIDER_BETA_API_KEY: SECRETS.betaKey,
        HTTP_AUTH_TOKENS: `${SECRETS.httpToken},${SECRETS.httpToken2}`,
        REDIS_URL: redis.url,
        TELEGRAM_BOT_TOKEN: SECRETS.telegramToken,
        TELEGRAM_API_ROOT: telegram.url,
        TELEGRAM_MODE: 'webhook',
        TELEGRAM_WEBHOOK_SECRET: SECRETS.telegramWebhookSecret,
        DISCORD_BOT_TOKEN: SECRETS.discordToken,
        DISCORD_API_ROOT: discord.apiRoot,
        SLACK_MODE: 'socket',
        SLACK_BOT_TOKEN: SECRETS.slackBotToken,
        SLACK_APP_TOKEN: SECRETS.slackAppToken,
        SLACK_SIGNING_SECRET: SECRETS.slackSigningSecret,
        SLACK_API_URL: slack.apiUrl,
      },
      30_000,
    );
    output = agent.output;
    await slack.waitForSocket(15_000);
    await until(() => discord.connections === 1, 15_000, 'discord gateway session');

    const webhook = `${agent.url}/telegram/webhook`;
    const telegramSays = async (text: string) => {
      const update = telegram.textUpdate(71, 71, text);
      const delivery = await telegram.deliverWebhook(webhook, update, SECRETS.telegramWebhookSecret);
      expect(delivery.status).toBe(200);
      return update;
    };
    const telegramAnswered = (text: string) =>
      until(() => telegram.sent.some((m) => m.text.includes(text)), 15_000, `telegram reply to ${text}`);

    // A provider failure whose error text carries the key (errors are where keys leak): alpha
    // answers 500 once, the gateway fails over to beta.
    alpha.setFault({
      kind: 'status',
      status: 500,
      times: 1,
      body: JSON.stringify({
        error: { message: `upstream broke for key ${SECRETS.alphaKey}`, type: 'server_error' },
      }),
    });
    const failed = await postHttp('secrets-user', 'through a failover', 'evt-failover');
    expect(failed.status).toBe(200);

    // Telegram (webhook, with its secret), one message followed from receipt to delivery.
    const picked = await telegramSays('hello from telegram');
    telegramTurn = `telegram:71:${picked.message?.message_id}`;
    await telegramAnswered('hello from telegram');
    // A forged webhook call: the secret with one character more.
    const forged = telegram.textUpdate(71, 71, 'forged');
    expect((await telegram.deliverWebhook(webhook, forged, `${SECRETS.telegramWebhookSecret}x`)).status).toBe(
      401,
    );

    // Discord and Slack (Socket Mode).
    discord.sendMessageCreate({
      channelId: discord.dmChannelFor('4001'),
      authorId: '4001',
      content: 'hi discord',
    });
    await until(() => discord.sent.some((m) => m.content.includes('hi discord')), 15_000, 'discord reply');
    slack.publishEvent(
      eventCallback({ event: messageEvent({ user: 'U4001', text: 'hi slack', channel: 'D4001' }) }),
    );
    await until(() => slack.posted.some((m) => m.text.includes('hi slack')), 15_000, 'slack reply');
    // Someone pastes a key into a chat: at debug level the Slack libraries log the event and the
    // (echoed) reply body, so the key reaches log lines, escaped twice, and only the scrub cuts it.
    slack.publishEvent(
      eventCallback({
        event: messageEvent({
          user: 'U4001',
          text: `pasted ${SECRETS.alphaKey} by mistake`,
          channel: 'D4001',
        }),
      }),
    );
    await until(
      () => slack.posted.some((m) => m.text.includes('by mistake')),
      15_000,
      'slack reply to the paste',
    );

    // alpha refuses its key (401, naming it): disabled, beta answers.
    alpha.setFault({
      kind: 'status',
      status: 401,
      times: 1,
      body: JSON.stringify({
        error: { message: `Incorrect API key provided: ${SECRETS.alphaKey}`, code: 'invalid_api_key' },
      }),
    });
    expect((await postHttp('secrets-user', 'after a 401', 'evt-401')).status).toBe(200);

    // A bad token (the real one with a character more), the status, the provider report.
    const badToken = await postHttp('secrets-user', 'let me in', 'evt-bad', {
      authorization: `Bearer ${SECRETS.httpToken}x`,
    });
    expect(badToken.status).toBe(401);
    expect((await fetch(`${agent.url}/api/status`, { headers: auth })).status).toBe(200);
    await telegramSays('/status');
    await telegramSays('/providers');
    await until(() => telegram.sent.length >= 3, 15_000, 'telegram /status and /providers');

    // Redis restarts under the agent; it reconnects (with the password) and answers again.
    await redis.restart();
    await telegramSays('after the redis restart');
    await telegramAnswered('after the redis restart');
    expect((await postHttp('secrets-user', 'http after restart', 'evt-after-restart')).status).toBe(200);

    agent.child.kill('SIGTERM');
    await agent.exited;
    lines = parseLines(output);
  }, 120_000);

  afterAll(async () => {
    if (agent && agent.child.exitCode === null) {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
    await Promise.allSettled([
      alpha?.close(),
      beta?.close(),
      telegram?.close(),
      discord?.close(),
      slack?.close(),
    ]);
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('logged at debug level, through every channel, a failover and a Redis restart', () => {
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.some((l) => l.level === 20)).toBe(true);
    expect(
      lines.some((l) => l.msg === 'provider call failed; failing over' && l.provider === 'alpha'),
      'the failover line',
    ).toBe(true);
    // The pasted key reached the Slack libraries' debug lines and was cut out of them: the leak
    // path the next test watches was taken.
    expect(
      lines.some((l) => l.channel === 'slack' && String(l.msg).includes('pasted [redacted] by mistake')),
    ).toBe(true);
    expect(lines.some((l) => l.msg === 'Redis is reachable again')).toBe(true);
  });

  it('no output line holds any secret, raw, JSON-escaped or percent-encoded', () => {
    const leaks: string[] = [];
    for (const [name, secret] of Object.entries(SECRETS)) {
      for (const form of forms(secret)) {
        for (const line of output) if (line.includes(form)) leaks.push(`${name}: ${line.slice(0, 300)}`);
      }
    }
    expect(leaks).toEqual([]);
  });

  it('the lines about one Telegram message share its turn id, from receipt to delivery', () => {
    const turnLines = lines.filter((l) => l.turn === telegramTurn);
    const messages = turnLines.map((l) => l.msg);
    expect(messages).toContain('message received');
    expect(messages).toContain('turn answered');
    expect(messages).toContain('reply delivered');
    // In that order.
    expect(messages.indexOf('message received')).toBeLessThan(messages.indexOf('turn answered'));
    expect(messages.indexOf('turn answered')).toBeLessThan(messages.indexOf('reply delivered'));
    // The gateway's line for that turn too.
    expect(turnLines.some((l) => l.msg === 'provider answered')).toBe(true);
  });

  it('an HTTP message: the failover and the turn carry its turn id and the request id', () => {
    const turnLines = lines.filter((l) => l.turn === 'http:evt-failover');
    const failover = turnLines.find((l) => l.msg === 'provider call failed; failing over');
    const answered = turnLines.find((l) => l.msg === 'turn answered');
    expect(failover?.provider).toBe('alpha');
    expect(answered?.provider).toBe('beta');
    expect(answered?.reqId).toEqual(expect.any(String));
    expect(failover?.reqId).toBe(answered?.reqId);
    expect(turnLines.find((l) => l.msg === 'message received')?.reqId).toBe(answered?.reqId);
  });
});
