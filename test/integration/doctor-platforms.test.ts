import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDiscord, startFakeDiscord } from '../fakes/fake-discord.js';
import { type FakeSlack, startFakeSlack } from '../fakes/fake-slack.js';
import { type FakeTelegram, startFakeTelegram } from '../fakes/fake-telegram.js';
import { MAIN_JS } from '../support/agent-process.js';
import { freePort } from '../support/free-port.js';

/** `dist/main.js doctor` in a scratch directory (no config file, no ecosystem file). */
function doctor(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'agent-doctor-platforms-'));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN_JS, 'doctor'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', LOCAL_LLM_PROBE: 'false', DATA_DIR: join(cwd, 'data'), ...env },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stderr.on('data', (c: Buffer) => (output += c));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

const TELEGRAM_TOKEN = '424242:AAdoctorTelegramSecret_0123456789';
const DISCORD_TOKEN = 'doctor-discord-secret.token-0123456789';
const SLACK_BOT_TOKEN = 'xoxb-doctor-slack-bot-secret';
const SLACK_APP_TOKEN = 'xapp-doctor-slack-app-secret';
const WRONG = {
  TELEGRAM_BOT_TOKEN: '424242:AAwrongTelegramSecret_9876543210',
  DISCORD_BOT_TOKEN: 'wrong-discord-secret.token-9876543210',
  SLACK_BOT_TOKEN: 'xoxb-wrong-slack-bot-secret',
  SLACK_APP_TOKEN: 'xapp-wrong-slack-app-secret',
};
const SECRETS = [TELEGRAM_TOKEN, DISCORD_TOKEN, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, ...Object.values(WRONG)];

function expectNoSecret(output: string): void {
  for (const secret of SECRETS) expect(output).not.toContain(secret);
  // The unmasked middle of each token is enough to leak it.
  expect(output).not.toMatch(
    /doctorTelegramSecret|wrongTelegramSecret|discord-secret|slack-(bot|app)-secret/,
  );
}

describe('doctor: platform tokens', () => {
  let telegram: FakeTelegram;
  let discord: FakeDiscord;
  let slack: FakeSlack;
  let env: Record<string, string>;
  beforeAll(async () => {
    telegram = await startFakeTelegram({ token: TELEGRAM_TOKEN, botUsername: 'doctor_bot' });
    discord = await startFakeDiscord({ token: DISCORD_TOKEN });
    slack = await startFakeSlack({ botToken: SLACK_BOT_TOKEN, appToken: SLACK_APP_TOKEN });
    env = {
      TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
      TELEGRAM_API_ROOT: telegram.url,
      DISCORD_BOT_TOKEN: DISCORD_TOKEN,
      DISCORD_API_ROOT: discord.apiRoot,
      SLACK_BOT_TOKEN,
      SLACK_APP_TOKEN,
      SLACK_MODE: 'socket',
      SLACK_API_URL: slack.apiUrl,
    };
  });
  afterAll(async () => {
    await telegram?.close();
    await discord?.close();
    await slack?.close();
  });

  it('passes when every token is accepted, with one authenticated call per platform', async () => {
    const { code, output } = await doctor(env);
    expect(output).toMatch(
      /\[ok {2}\] telegram: bot @doctor_bot \(id \d+\) answers getMe at http:\/\/127\.0\.0\.1:\d+\n/,
    );
    expect(output).toMatch(
      /\[ok {2}\] discord: bot \S+ \(id \d+\) answers GET \/users\/@me at http:\/\/127\.0\.0\.1:\d+\n/,
    );
    expect(output).toMatch(
      /\[ok {2}\] slack: bot \S+ \(\w+\) in Fake Team answers auth\.test at http:\/\/127\.0\.0\.1:\d+\n/,
    );
    expect(output).toMatch(/\[ok {2}\] slack app token: apps\.connections\.open accepts the app token/);
    expect(output).not.toContain('[FAIL]');
    expect(telegram.calls.some((c) => c.method === 'getMe')).toBe(true);
    expect(slack.calls.filter((c) => c.method === 'auth.test').map((c) => c.token)).toContain(
      SLACK_BOT_TOKEN,
    );
    expect(slack.calls.filter((c) => c.method === 'apps.connections.open').map((c) => c.token)).toContain(
      SLACK_APP_TOKEN,
    );
    // The Socket Mode ticket URL is never shown.
    expect(output).not.toMatch(/ticket=/);
    expectNoSecret(output);
    expect(code).toBe(0);
  });

  it.each([
    [
      'TELEGRAM_BOT_TOKEN',
      /\[FAIL\] telegram: Telegram refused the bot token \(getMe: 401 Unauthorized\)\n\s+fix: set TELEGRAM_BOT_TOKEN /,
    ],
    [
      'DISCORD_BOT_TOKEN',
      /\[FAIL\] discord: Discord refused the bot token \(GET \/users\/@me: 401 Unauthorized\)\n\s+fix: set DISCORD_BOT_TOKEN /,
    ],
    [
      'SLACK_BOT_TOKEN',
      /\[FAIL\] slack: Slack refused the bot token \(auth\.test: invalid_auth\)\n\s+fix: set SLACK_BOT_TOKEN /,
    ],
    [
      'SLACK_APP_TOKEN',
      /\[FAIL\] slack app token: Slack refused the app token \(apps\.connections\.open: invalid_auth\)\n\s+fix: set SLACK_APP_TOKEN /,
    ],
  ] as const)('a wrong %s fails with a fix naming it', async (name, finding) => {
    const { code, output } = await doctor({ ...env, [name]: WRONG[name] });
    expect(output).toMatch(finding);
    // Only that one check fails.
    expect(output.match(/\[FAIL\]/g)).toHaveLength(1);
    expectNoSecret(output);
    expect(code).toBe(1);
  });

  it('says which API root cannot be reached, without the token in the URL', async () => {
    const dead = await freePort();
    const { code, output } = await doctor({
      ...env,
      TELEGRAM_API_ROOT: `http://127.0.0.1:${dead}`,
      DISCORD_API_ROOT: `http://127.0.0.1:${dead}/api`,
      SLACK_API_URL: `http://127.0.0.1:${dead}/api/`,
    });
    const at = `at http://127\\.0\\.0\\.1:${dead} \\(ECONNREFUSED\\)`;
    expect(output).toMatch(
      new RegExp(
        `\\[FAIL\\] telegram: cannot reach the Telegram Bot API ${at}\\n\\s+fix: .*TELEGRAM_API_ROOT`,
      ),
    );
    expect(output).toMatch(
      new RegExp(`\\[FAIL\\] discord: cannot reach the Discord API ${at}\\n\\s+fix: .*DISCORD_API_ROOT`),
    );
    expect(output).toMatch(
      new RegExp(`\\[FAIL\\] slack: cannot reach the Slack Web API ${at}\\n\\s+fix: .*SLACK_API_URL`),
    );
    expect(output).toMatch(new RegExp(`\\[FAIL\\] slack app token: cannot reach the Slack Web API ${at}`));
    expectNoSecret(output);
    expect(code).toBe(1);
  });

  it('checks only enabled channels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-doctor-disabled-'));
    const file = join(dir, 'agent.config.json');
    const dead = await freePort();
    writeFileSync(
      file,
      JSON.stringify({
        channels: {
          telegram: { enabled: false, botToken: TELEGRAM_TOKEN, apiRoot: `http://127.0.0.1:${dead}` },
        },
      }),
    );
    const before = telegram.calls.length;
    const { code, output } = await doctor({ AGENT_CONFIG: file });
    expect(output).toContain('"telegram": {');
    expect(output).not.toMatch(/\] telegram:/);
    expect(output).not.toMatch(/\] (discord|slack):/);
    expect(telegram.calls.length).toBe(before);
    expect(code).toBe(0);
  });
});
