import { describe, expect, it } from 'vitest';
import type { ChannelsConfig } from '../../../../src/channels/channels-config.js';
import { loadConfig } from '../../../../src/core/config/load-config.js';
import type { AgentConfig } from '../../../../src/core/config/schema.js';
import {
  SecretRotation,
  type SecretRotationTargets,
  type WalletKeyRenewal,
} from '../../../../src/core/config/secret-rotation.js';
import { emptyDir } from './config-dirs.js';

const TG_V1 = '123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const TG_V2 = '123456:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

const BASE_ENV = {
  HTTP_AUTH_TOKENS: 'token-one-0123456789',
  OPENAI_API_KEY: 'sk-rotation-one-0123456789',
  TELEGRAM_BOT_TOKEN: TG_V1,
  SLACK_BOT_TOKEN: 'xoxb-slack-one',
  SLACK_SIGNING_SECRET: 'signing-secret-one-0123',
  WALLET_SECRET_KEY: 'wallet-secret-one',
};

function collectingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => {
    lines.push({ level, fields, message });
  };
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } as never };
}

function rig(targets: SecretRotationTargets = {}, extraEnv: NodeJS.ProcessEnv = {}) {
  const cwd = emptyDir();
  let env: NodeJS.ProcessEnv = { ...BASE_ENV, ...extraEnv };
  const load = (): Readonly<AgentConfig> => loadConfig({ env, cwd });
  const { lines, logger } = collectingLogger();
  const rotation = new SecretRotation({ initial: load(), reload: load, targets, logger });
  return {
    rotation,
    lines,
    setEnv(changes: NodeJS.ProcessEnv) {
      env = { ...env, ...changes };
    },
  };
}

describe('SecretRotation', () => {
  it('hands each rotated secret to the part that uses it, and reports the keys, never the values', async () => {
    const tokens: (readonly string[])[] = [];
    const channels: ChannelsConfig[] = [];
    const { rotation, lines, setEnv } = rig({
      httpTokens: (t) => {
        tokens.push(t);
        return true;
      },
      channels: async (c) => {
        channels.push(c);
        return [];
      },
    });
    setEnv({
      HTTP_AUTH_TOKENS: 'token-one-0123456789,token-two-0123456789',
      OPENAI_API_KEY: 'sk-rotation-two-0123456789',
      TELEGRAM_BOT_TOKEN: TG_V2,
    });

    const report = await rotation.check();

    expect(report.taken.sort()).toEqual([
      'channels.telegram.botToken',
      'http.authTokens',
      'providers.openai.apiKey',
    ]);
    expect(tokens).toEqual([['token-one-0123456789', 'token-two-0123456789']]);
    expect(channels.map((c) => c.telegram?.botToken)).toEqual([TG_V2]);
    expect(rotation.providerKey('openai')).toBe('sk-rotation-two-0123456789');
    expect(rotation.config.channels.telegram?.botToken).toBe(TG_V2);
    const logged = JSON.stringify(lines);
    expect(logged).toContain('channels.telegram.botToken');
    expect(logged).not.toContain(TG_V2);
    expect(logged).not.toContain('sk-rotation-two');
  });

  it('does nothing when no secret changed', async () => {
    let calls = 0;
    const { rotation } = rig({
      httpTokens: () => {
        calls += 1;
        return true;
      },
      channels: async () => {
        calls += 1;
        return [];
      },
    });
    expect(await rotation.check()).toEqual({ taken: [], failed: [], restartNeeded: [] });
    expect(calls).toBe(0);
  });

  it('takes only secrets: any other change waits for a restart', async () => {
    const { rotation, setEnv } = rig({ channels: async () => [] });
    setEnv({
      HTTP_PORT: '9999',
      TELEGRAM_MODE: 'webhook',
      TELEGRAM_WEBHOOK_SECRET: 'webhook-secret-0123456789',
    });
    const report = await rotation.check();
    expect(report.taken).toEqual(['channels.telegram.webhookSecret']);
    expect(rotation.config.http.port).toBe(8080);
    expect(rotation.config.channels.telegram?.mode).toBe('polling');
  });

  it('refuses an empty token list (the API would open) and keeps the tokens in use', async () => {
    const { rotation, setEnv } = rig({ httpTokens: (t) => t.length > 0 });
    setEnv({ HTTP_AUTH_TOKENS: '' });
    const report = await rotation.check();
    expect(report.failed).toEqual([
      { key: 'http.authTokens', error: 'an empty token list would open the API' },
    ]);
    expect(rotation.config.http.authTokens).toEqual(['token-one-0123456789']);
  });

  it('reports a platform that could not take its secret, and still takes the others', async () => {
    const { rotation, setEnv } = rig({
      channels: async () => [{ channel: 'slack', error: 'auth.test refused the new token' }],
    });
    setEnv({ TELEGRAM_BOT_TOKEN: TG_V2, SLACK_BOT_TOKEN: 'xoxb-slack-two' });
    const report = await rotation.check();
    expect(report.taken).toEqual(['channels.telegram.botToken']);
    expect(report.failed).toEqual([
      { key: 'channels.slack.botToken', error: 'auth.test refused the new token' },
    ]);
  });

  it('a wallet key the wallet kept is offered again at the next check', async () => {
    const renewals: WalletKeyRenewal[] = [
      { outcome: 'kept', reason: 'the keystore does not open' },
      { outcome: 'renewed' },
    ];
    let offered = 0;
    const { rotation, setEnv } = rig({
      walletKey: async () => {
        offered += 1;
        return renewals.shift() as WalletKeyRenewal;
      },
    });
    setEnv({ WALLET_SECRET_KEY: 'wallet-secret-two' });
    expect((await rotation.check()).failed).toEqual([
      { key: 'wallet.key', error: 'the keystore does not open' },
    ]);
    expect(rotation.config.wallet.key.secretKey).toBe('wallet-secret-one');
    expect((await rotation.check()).taken).toEqual(['wallet.key']);
    expect(offered).toBe(2);
    expect(rotation.config.wallet.key.secretKey).toBe('wallet-secret-two');
  });

  it('names a changed Redis password as needing a restart, and keeps everything when the config no longer loads', async () => {
    const { rotation, setEnv, lines } = rig({}, { REDIS_URL: 'redis://127.0.0.1:6390' });
    setEnv({ REDIS_PASSWORD: 'new-redis-password' });
    expect((await rotation.check()).restartNeeded).toEqual(['redis.password']);

    setEnv({ TELEGRAM_BOT_TOKEN: 'not-a-token' });
    const report = await rotation.check();
    expect(report.failed.map((f) => f.key)).toEqual(['config']);
    expect(rotation.config.channels.telegram?.botToken).toBe(TG_V1);
    expect(lines.some((l) => l.level === 'error' && /no longer loads/.test(l.message))).toBe(true);
  });
});
