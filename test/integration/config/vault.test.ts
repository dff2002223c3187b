import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/core/config/load-config.js';
import { providerSchema } from '../../../src/core/config/schema.js';
import { isVaultError, VaultClient, type VaultError } from '../../../src/core/config/vault/vault-client.js';
import { VaultSecretSource } from '../../../src/core/config/vault/vault-secret-source.js';
import { checkVault, loadVaultSecrets } from '../../../src/core/config/vault/vault-startup.js';
import { createProvider } from '../../../src/providers/create-provider.js';
import { startFakeAnthropic } from '../../fakes/fake-anthropic.js';
import { startFakeOpenAi } from '../../fakes/fake-openai.js';
import { type FakeVault, startFakeVault } from '../../fakes/fake-vault.js';
import { MAIN_JS, startAgentProcess } from '../../support/agent-process.js';
import { freePort } from '../../support/free-port.js';
import { until } from '../../support/until.js';

const TOKEN = 'hvs.test-token-7d3f9a1c2b';
const ROLE_ID = 'role-agent-prod-1b2c';
const SECRET_ID = 'secret-id-9e8d7c6b5a4f';
const KEY_V1 = 'sk-vault-first-0123456789';
const KEY_V2 = 'sk-vault-second-9876543210';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function vault(
  options: Parameters<typeof startFakeVault>[0] = { tokens: [TOKEN] },
): Promise<FakeVault> {
  const fake = await startFakeVault(options);
  cleanups.push(() => fake.close());
  return fake;
}

function captureLogger() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  return {
    lines,
    warn: (fields: Record<string, unknown>, message: string) =>
      lines.push({ level: 'warn', fields, message }),
    info: (fields: Record<string, unknown>, message: string) =>
      lines.push({ level: 'info', fields, message }),
  };
}

async function caught(promise: Promise<unknown>): Promise<VaultError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isVaultError(error)).toBe(true);
  return error as VaultError;
}

describe('Vault KV v2 client', () => {
  it('reads a secret with a token, sending it as X-Vault-Token (and the namespace)', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1 });
    const client = new VaultClient({
      addr: fake.addr,
      auth: { kind: 'token', token: TOKEN },
      namespace: 'team-a',
    });

    const secret = await client.readKv('secret', 'agent/prod');

    expect(secret).toEqual({ data: { OPENAI_API_KEY: KEY_V1 }, version: 1 });
    const read = fake.requests.at(-1);
    expect(read?.path).toBe('/v1/secret/data/agent/prod');
    expect(read?.headers['x-vault-token']).toBe(TOKEN);
    expect(read?.headers['x-vault-namespace']).toBe('team-a');
  });

  it('logs in with AppRole, reads with the issued token, and logs in again after a 403 or near the lease end', async () => {
    const fake = await vault({ appRoles: [{ roleId: ROLE_ID, secretId: SECRET_ID }], leaseSeconds: 100 });
    fake.put('secret', 'agent/prod', { ANTHROPIC_API_KEY: KEY_V1 });
    let now = 1_000_000;
    const client = new VaultClient({
      addr: fake.addr,
      auth: { kind: 'approle', roleId: ROLE_ID, secretId: SECRET_ID },
      now: () => now,
    });

    expect((await client.readKv('secret', 'agent/prod')).data).toEqual({ ANTHROPIC_API_KEY: KEY_V1 });
    expect(fake.logins).toBe(1);
    expect(fake.requests.at(-1)?.headers['x-vault-token']).toBe(fake.issuedTokens[0]);

    await client.readKv('secret', 'agent/prod');
    expect(fake.logins).toBe(1);

    // Revoked behind its back: the 403 makes it log in again and retry once.
    fake.revoke(fake.issuedTokens[0] as string);
    expect((await client.readKv('secret', 'agent/prod')).data).toEqual({ ANTHROPIC_API_KEY: KEY_V1 });
    expect(fake.logins).toBe(2);
    expect(fake.requests.at(-1)?.headers['x-vault-token']).toBe(fake.issuedTokens[1]);

    // 90 s into a 100 s lease: past 80%, so it logs in before reading.
    now += 90_000;
    await client.readKv('secret', 'agent/prod');
    expect(fake.logins).toBe(3);
    expect(fake.requests.at(-1)?.headers['x-vault-token']).toBe(fake.issuedTokens[2]);
  });

  it('refuses a bad AppRole secret id as vault_denied without echoing it', async () => {
    const fake = await vault({ appRoles: [{ roleId: ROLE_ID, secretId: SECRET_ID }] });
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1 });
    const wrong = 'secret-id-wrong-000111222';
    const error = await caught(
      new VaultClient({
        addr: fake.addr,
        auth: { kind: 'approle', roleId: ROLE_ID, secretId: wrong },
      }).readKv('secret', 'agent/prod'),
    );
    expect(error.code).toBe('vault_denied');
    expect(error.message).toContain('invalid role or secret ID');
    expect(`${error.message} ${error.stack} ${JSON.stringify(error)}`).not.toContain(wrong);
    expect(`${error.message} ${error.stack}`).not.toContain(ROLE_ID);
  });

  it('a bad token is vault_denied and the error never contains the token or a secret', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1 });
    const badToken = 'hvs.not-a-valid-token-4242';
    const error = await caught(
      new VaultClient({ addr: fake.addr, auth: { kind: 'token', token: badToken } }).readKv(
        'secret',
        'agent/prod',
      ),
    );
    expect(error.code).toBe('vault_denied');
    expect(error.status).toBe(403);
    expect(error.message).toContain('secret/agent/prod');
    expect(fake.requests.at(-1)?.headers['x-vault-token']).toBe(badToken);
    const everything = `${error.message} ${error.stack} ${JSON.stringify(error)} ${String(error)}`;
    expect(everything).not.toContain(badToken);
    expect(everything).not.toContain(KEY_V1);
  });

  it('a missing secret is vault_not_found', async () => {
    const fake = await vault();
    const error = await caught(
      new VaultClient({ addr: fake.addr, auth: { kind: 'token', token: TOKEN } }).readKv(
        'secret',
        'agent/none',
      ),
    );
    expect(error.code).toBe('vault_not_found');
  });

  it('a closed port is vault_unreachable, naming the address but not the token', async () => {
    const addr = `http://127.0.0.1:${await freePort()}`;
    const error = await caught(
      new VaultClient({ addr, auth: { kind: 'token', token: TOKEN }, timeoutMs: 2000 }).readKv(
        'secret',
        'agent/prod',
      ),
    );
    expect(error.code).toBe('vault_unreachable');
    expect(error.message).toContain(addr);
    expect(error.message).toContain('ECONNREFUSED');
    expect(`${error.message} ${error.stack}`).not.toContain(TOKEN);
  });
});

describe('Vault secrets at start-up', () => {
  function baseEnv(fake: FakeVault): NodeJS.ProcessEnv {
    return { VAULT_ADDR: fake.addr, VAULT_TOKEN: TOKEN, VAULT_SECRET_PATH: 'agent/prod' };
  }

  it('merges known secrets; an explicit env variable (or its _FILE) wins; unknown keys are ignored by name', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', {
      OPENAI_API_KEY: 'sk-from-vault-openai-123',
      ANTHROPIC_API_KEY: 'sk-from-vault-anthropic-456',
      TELEGRAM_BOT_TOKEN: '123456:AAvaultTelegramToken0123456789',
      SOMETHING_ELSE: 'not-a-secret-value-789',
      HTTP_PORT: '9999',
    });
    const dir = mkdtempSync(join(tmpdir(), 'vault-env-'));
    const telegramFile = join(dir, 'telegram-token');
    writeFileSync(telegramFile, '123456:AAfileTelegramToken0123456789\n');
    const logger = captureLogger();

    const { env, source } = await loadVaultSecrets(
      {
        ...baseEnv(fake),
        OPENAI_API_KEY: 'sk-from-env-openai-000',
        TELEGRAM_BOT_TOKEN_FILE: telegramFile,
      },
      { logger },
    );

    expect(env.OPENAI_API_KEY).toBe('sk-from-env-openai-000');
    expect(env.ANTHROPIC_API_KEY).toBe('sk-from-vault-anthropic-456');
    // Only the _FILE is set, so loadConfig does not see the name twice.
    expect(env.TELEGRAM_BOT_TOKEN).toBeUndefined();
    expect(env.SOMETHING_ELSE).toBeUndefined();
    expect(env.HTTP_PORT).toBeUndefined();
    expect(source?.names()).toEqual(['ANTHROPIC_API_KEY']);
    expect(source?.get('OPENAI_API_KEY')).toBeUndefined();

    const ignored = logger.lines.find((l) => l.level === 'warn' && /ignoring keys/.test(l.message));
    expect(ignored?.fields.keys).toEqual(['HTTP_PORT', 'SOMETHING_ELSE']);
    expect(JSON.stringify(logger.lines)).not.toContain('not-a-secret-value-789');
    expect(JSON.stringify(logger.lines)).not.toContain('sk-from-vault');

    const config = loadConfig({ env, cwd: dir });
    const keys = Object.fromEntries(config.providers.map((p) => [p.id, p.apiKey]));
    expect(keys).toEqual({ openai: 'sk-from-env-openai-000', anthropic: 'sk-from-vault-anthropic-456' });
    expect(config.channels.telegram?.botToken).toBe('123456:AAfileTelegramToken0123456789');
  });

  it('reads the AppRole secret id from VAULT_SECRET_ID_FILE', async () => {
    const fake = await vault({ appRoles: [{ roleId: ROLE_ID, secretId: SECRET_ID }] });
    fake.put('secret', 'agent/prod', { SLACK_SIGNING_SECRET: 'slack-signing-from-vault' });
    const file = join(mkdtempSync(join(tmpdir(), 'vault-sid-')), 'secret-id');
    writeFileSync(file, `${SECRET_ID}\n`);
    const { env } = await loadVaultSecrets({
      VAULT_ADDR: fake.addr,
      VAULT_ROLE_ID: ROLE_ID,
      VAULT_SECRET_ID_FILE: file,
      VAULT_SECRET_PATH: 'agent/prod',
    });
    expect(env.SLACK_SIGNING_SECRET).toBe('slack-signing-from-vault');
    expect(fake.logins).toBe(1);
  });

  it('checkVault reports what Vault supplies, and the fix when it cannot be read', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1 });
    const good = await checkVault(baseEnv(fake));
    expect(good).toMatchObject({ check: 'vault', ok: true, severity: 'info' });
    expect(good.detail).toContain('supplies OPENAI_API_KEY');
    expect(good.detail).not.toContain(KEY_V1);

    const denied = await checkVault({ ...baseEnv(fake), VAULT_TOKEN: 'hvs.wrong-token-for-doctor' });
    expect(denied).toMatchObject({ check: 'vault', ok: false, severity: 'error' });
    expect(denied.fix).toContain('VAULT_TOKEN');
    expect(JSON.stringify(denied)).not.toContain('hvs.wrong-token-for-doctor');

    const off = await checkVault({});
    expect(off).toMatchObject({ ok: true, severity: 'info' });
    expect(off.detail).toContain('not used');
  });
});

describe('Vault rotation without restart', () => {
  function source(fake: FakeVault, refreshMs: number, env: NodeJS.ProcessEnv = {}) {
    const s = new VaultSecretSource({
      client: new VaultClient({ addr: fake.addr, auth: { kind: 'token', token: TOKEN } }),
      mount: 'secret',
      path: 'agent/prod',
      refreshMs,
      env,
      logger: captureLogger(),
    });
    cleanups.push(() => s.stop());
    return s;
  }

  it('the scheduled refresh picks up a rotated value and emits changed with its name only', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1, SLACK_BOT_TOKEN: 'xoxb-unchanged-1234' });
    const s = source(fake, 50);
    await s.refresh();
    expect(s.get('OPENAI_API_KEY')).toBe(KEY_V1);
    expect(s.version).toBe(1);

    const changed: string[][] = [];
    s.on('changed', (names) => changed.push(names));
    s.start();
    // A few refreshes with nothing new: no event.
    await new Promise((r) => setTimeout(r, 200));
    expect(changed).toEqual([]);
    const readsBefore = fake.requests.length;
    expect(readsBefore).toBeGreaterThan(2);

    fake.rotate('secret', 'agent/prod', 'OPENAI_API_KEY', KEY_V2);
    const names = await new Promise<string[]>((resolve) => s.once('changed', resolve));
    expect(names).toEqual(['OPENAI_API_KEY']);
    expect(s.get('OPENAI_API_KEY')).toBe(KEY_V2);
    expect(s.get('SLACK_BOT_TOKEN')).toBe('xoxb-unchanged-1234');
    expect(s.version).toBe(2);
    // The rotated-out key is still known to the scrubbers.
    expect(s.secretValues()).toEqual(expect.arrayContaining([KEY_V1, KEY_V2]));

    s.stop();
    const readsAtStop = fake.requests.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(fake.requests.length).toBe(readsAtStop);
  });

  it('keeps the last values when a refresh fails', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1 });
    const s = source(fake, 30);
    await s.refresh();
    const failed = new Promise<Error>((resolve) => s.once('refreshFailed', resolve));
    fake.revoke(TOKEN);
    s.start();
    expect(((await failed) as VaultError).code).toBe('vault_denied');
    expect(s.get('OPENAI_API_KEY')).toBe(KEY_V1);
  });

  it('a variable the environment sets is never served from Vault, even after a rotation', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1 });
    const s = source(fake, 0, { OPENAI_API_KEY: 'sk-explicit-env-key' });
    await s.refresh();
    fake.rotate('secret', 'agent/prod', 'OPENAI_API_KEY', KEY_V2);
    expect(await s.refresh()).toEqual([]);
    expect(s.get('OPENAI_API_KEY')).toBeUndefined();
  });

  it('an OpenAI provider built with the getter sends the new key after rotation, without a rebuild', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1 });
    const openai = await startFakeOpenAi();
    cleanups.push(() => openai.close());
    const s = source(fake, 0);
    await s.refresh();
    const provider = createProvider(
      providerSchema.parse({
        id: 'openai',
        kind: 'openai',
        apiKey: KEY_V1,
        baseURL: openai.baseURL,
        timeoutMs: 5000,
      }),
      undefined,
      { getApiKey: () => s.get('OPENAI_API_KEY') },
    );
    const ask = { messages: [{ role: 'user' as const, content: 'hi' }] };

    expect((await provider.complete(ask)).text).toBe('echo: hi');
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_V1}`);

    fake.rotate('secret', 'agent/prod', 'OPENAI_API_KEY', KEY_V2);
    expect(await s.refresh()).toEqual(['OPENAI_API_KEY']);
    await provider.complete(ask);
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_V2}`);
    // Streams and probes take the key the same way.
    for await (const _ of provider.stream(ask)) {
      // drain
    }
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_V2}`);
  });

  it('Azure OpenAI rebuilds its client for a new key; Anthropic takes the getter', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { PROVIDER_AZ_API_KEY: KEY_V1, ANTHROPIC_API_KEY: KEY_V1 });
    const openai = await startFakeOpenAi();
    const anthropic = await startFakeAnthropic();
    cleanups.push(
      () => openai.close(),
      () => anthropic.close(),
    );
    const s = source(fake, 0);
    await s.refresh();
    const azure = createProvider(
      providerSchema.parse({
        id: 'az',
        kind: 'azure-openai',
        endpoint: openai.azureEndpoint,
        apiVersion: '2024-10-21',
        deployment: 'gpt-4o',
        apiKey: 'azure-key-from-config',
        timeoutMs: 5000,
      }),
      undefined,
      { getApiKey: () => s.get('PROVIDER_AZ_API_KEY') },
    );
    const claude = createProvider(
      providerSchema.parse({
        id: 'anthropic',
        kind: 'anthropic',
        apiKey: 'anthropic-key-from-config',
        baseURL: anthropic.baseURL,
        timeoutMs: 5000,
      }),
      undefined,
      { getApiKey: () => s.get('ANTHROPIC_API_KEY') },
    );
    const ask = { messages: [{ role: 'user' as const, content: 'hi' }] };
    await azure.complete(ask);
    await claude.complete(ask);
    expect(openai.requests.at(-1)?.headers['api-key']).toBe(KEY_V1);
    expect(JSON.stringify(anthropic.requests.at(-1)?.headers)).toContain(KEY_V1);

    fake.put('secret', 'agent/prod', { PROVIDER_AZ_API_KEY: KEY_V2, ANTHROPIC_API_KEY: KEY_V2 });
    await s.refresh();
    await azure.complete(ask);
    await claude.complete(ask);
    expect(openai.requests.at(-1)?.headers['api-key']).toBe(KEY_V2);
    expect(JSON.stringify(anthropic.requests.at(-1)?.headers)).toContain(KEY_V2);
    expect(JSON.stringify(anthropic.requests.at(-1)?.headers)).not.toContain(KEY_V1);

    // Vault no longer holds the key: back to the config's.
    fake.put('secret', 'agent/prod', {});
    await s.refresh();
    await azure.complete(ask);
    expect(openai.requests.at(-1)?.headers['api-key']).toBe('azure-key-from-config');
  });
});

describe('the built agent with Vault', () => {
  it('starts with only VAULT_ADDR/VAULT_TOKEN/VAULT_SECRET_PATH and answers with the key from Vault', async () => {
    const fake = await vault();
    fake.put('secret', 'agent/prod', { OPENAI_API_KEY: KEY_V1 });
    const openai = await startFakeOpenAi();
    cleanups.push(() => openai.close());
    const agent = await startAgentProcess({
      DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-vault-')),
      VAULT_ADDR: fake.addr,
      VAULT_TOKEN: TOKEN,
      VAULT_SECRET_PATH: 'agent/prod',
      VAULT_REFRESH_MS: '200',
      OPENAI_BASE_URL: openai.baseURL,
      OPENAI_MODEL: 'fake-model',
      LOG_LEVEL: 'debug',
    });
    cleanups.push(async () => {
      agent.child.kill('SIGKILL');
      await agent.exited;
    });

    const response = await fetch(`${agent.url}/api/conversations/v/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hello vault' }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { reply: { text: string } }).reply.text).toBe('echo: hello vault');
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_V1}`);
    expect(fake.requests.some((r) => r.path === '/v1/secret/data/agent/prod' && r.status === 200)).toBe(true);
    expect(agent.output.join('\n')).not.toContain(KEY_V1);

    // Rotated in Vault: the running agent uses the new key within a refresh, without a restart,
    // and neither key ever reaches its log.
    fake.rotate('secret', 'agent/prod', 'OPENAI_API_KEY', KEY_V2);
    await until(
      () => agent.output.some((line) => line.includes('rotated secrets taken without a restart')),
      10_000,
      'the rotated key taken',
    );
    const after = await fetch(`${agent.url}/api/conversations/v/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'after rotation' }),
    });
    expect(after.status).toBe(200);
    expect(openai.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_V2}`);
    expect(agent.output.join('\n')).not.toContain(KEY_V1);
    expect(agent.output.join('\n')).not.toContain(KEY_V2);
  });

  it('exits 78 naming VAULT_ADDR and the fix when Vault is unreachable at start', async () => {
    const addr = `http://127.0.0.1:${await freePort()}`;
    const child = spawn(process.execPath, [MAIN_JS, 'start'], {
      env: {
        PATH: process.env.PATH ?? '',
        LOCAL_LLM_PROBE: 'false',
        DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-vault-down-')),
        HTTP_PORT: String(await freePort()),
        VAULT_ADDR: addr,
        VAULT_TOKEN: TOKEN,
        VAULT_SECRET_PATH: 'agent/prod',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    // An agent that ignored VAULT_ADDR would start and keep running: stop it so the test fails quickly.
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(killer);
    expect(code).toBe(78);
    expect(stderr).toContain(addr);
    expect(stderr).toContain('unreachable');
    expect(stderr).toMatch(/fix: .*VAULT_ADDR/);
    expect(stderr).not.toContain(TOKEN);
  });
});
