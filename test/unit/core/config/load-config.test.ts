import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectSecrets, loadConfig, redactConfig } from '../../../../src/core/config/load-config.js';
import { configError, emptyDir, withFile } from './config-dirs.js';

describe('loadConfig', () => {
  it('starts on embedded defaults with no file and no environment', () => {
    const config = loadConfig({ env: {}, cwd: emptyDir() });
    expect(config.http).toMatchObject({ host: '127.0.0.1', port: 8080, authTokens: [] });
    expect(config.memory.dataDir).toBe('data');
    expect(config.redis.url).toBeUndefined();
    expect(config.providers).toEqual([]);
    expect(Object.isFrozen(config.http)).toBe(true);
  });

  it('applies environment overrides over the file', () => {
    const cwd = emptyDir();
    writeFileSync(
      join(cwd, 'agent.config.json'),
      JSON.stringify({ http: { port: 9000 }, agent: { name: 'filed' } }),
    );
    const config = loadConfig({ env: { HTTP_PORT: '9100', OPENAI_API_KEY: 'sk-test-1234567890' }, cwd });
    expect(config.http.port).toBe(9100);
    expect(config.agent.name).toBe('filed');
    expect(config.providers).toEqual([
      expect.objectContaining({
        id: 'openai',
        kind: 'openai',
        apiKey: 'sk-test-1234567890',
        model: 'gpt-4o-mini',
      }),
    ]);
  });

  it('reads secrets from NAME_FILE variables without their trailing newline', () => {
    const dir = emptyDir();
    writeFileSync(join(dir, 'key'), 'sk-from-file-abcdef\n');
    const config = loadConfig({ env: { ANTHROPIC_API_KEY_FILE: join(dir, 'key') }, cwd: dir });
    expect(config.providers[0]).toMatchObject({ kind: 'anthropic', apiKey: 'sk-from-file-abcdef' });
  });

  it("reads each configured provider's key from PROVIDER_<ID>_API_KEY or its _FILE", () => {
    const cwd = emptyDir();
    writeFileSync(join(cwd, 'keyfile'), 'sk-azure-from-file\n');
    writeFileSync(
      join(cwd, 'agent.config.json'),
      JSON.stringify({
        providers: [
          { id: 'deepseek', kind: 'openai', baseURL: 'https://api.deepseek.com/v1', model: 'deepseek-chat' },
          {
            id: 'my-azure',
            kind: 'azure-openai',
            endpoint: 'https://x.openai.azure.com',
            apiVersion: '2024-10-21',
            deployment: 'd',
          },
        ],
      }),
    );
    const config = loadConfig({
      env: {
        PROVIDER_DEEPSEEK_API_KEY: 'sk-deepseek-123',
        PROVIDER_MY_AZURE_API_KEY_FILE: join(cwd, 'keyfile'),
      },
      cwd,
    });
    expect(config.providers.map((p) => p.apiKey)).toEqual(['sk-deepseek-123', 'sk-azure-from-file']);
  });

  it('masks secrets in the redacted view and collects them for log redaction', () => {
    const config = loadConfig({
      env: {
        OPENAI_API_KEY: 'sk-secret-value-123',
        HTTP_AUTH_TOKENS: 'token-aaaaaaaaaaaaaaaa',
        REDIS_URL: 'redis://:hunter22@h:6379',
      },
      cwd: emptyDir(),
    });
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('sk-secret-value-123');
    expect(shown).not.toContain('token-aaaaaaaaaaaaaaaa');
    expect(shown).not.toContain('hunter22');
    expect(collectSecrets(config)).toEqual(
      expect.arrayContaining(['sk-secret-value-123', 'token-aaaaaaaaaaaaaaaa', 'hunter22']),
    );
  });

  const cases: {
    name: string;
    env?: Record<string, string>;
    file?: unknown;
    key: string;
    text: RegExp;
    source?: string;
  }[] = [
    {
      name: 'port is not a number',
      env: { HTTP_PORT: 'eighty' },
      key: 'http.port',
      text: /expected number/,
      source: 'HTTP_PORT',
    },
    { name: 'port out of range', env: { HTTP_PORT: '70000' }, key: 'http.port', text: /65535/ },
    {
      name: 'public bind without tokens',
      env: { HTTP_HOST: '0.0.0.0' },
      key: 'http.authTokens',
      text: /not a loopback address[\s\S]*HTTP_AUTH_TOKENS/,
    },
    {
      name: 'auth token too short',
      env: { HTTP_AUTH_TOKENS: 'short' },
      key: 'http.authTokens.0',
      text: /16 characters/,
    },
    { name: 'unknown log level', env: { LOG_LEVEL: 'loud' }, key: 'log.level', text: /must be one of/ },
    {
      name: 'redis url without scheme',
      env: { REDIS_URL: 'localhost:6379' },
      key: 'redis.url',
      text: /redis:\/\//,
    },
    {
      name: 'bad provider base URL',
      env: { OPENAI_BASE_URL: 'ftp://x' },
      key: 'providers.0.baseURL',
      text: /http:\/\//,
    },
    {
      name: 'OpenAI without key or base URL',
      env: { OPENAI_MODEL: 'gpt-4o' },
      key: 'providers.0.apiKey',
      text: /OPENAI_API_KEY/,
    },
    {
      name: 'unknown top-level key',
      file: { htp: { port: 1 } },
      key: '(root)',
      text: /unknown key\(s\) "htp"/,
    },
    { name: 'unknown nested key', file: { http: { prot: 1 } }, key: 'http', text: /"prot"/ },
    {
      name: 'unknown provider kind',
      file: { providers: [{ id: 'x', kind: 'gemini' }] },
      key: 'providers.0.kind',
      text: /openai/,
    },
    {
      name: 'duplicate provider ids',
      file: {
        providers: [
          { id: 'a', kind: 'openai', apiKey: 'k1234567' },
          { id: 'a', kind: 'openai', apiKey: 'k7654321' },
        ],
      },
      key: 'providers.1.id',
      text: /unique/,
    },
    { name: 'config file is not JSON', file: '{ "http": ', key: '(config file)', text: /valid JSON/ },
    {
      name: 'AGENT_CONFIG points nowhere',
      env: { AGENT_CONFIG: 'missing.json' },
      key: 'AGENT_CONFIG',
      text: /ENOENT/,
    },
    {
      name: 'secret file unreadable',
      env: { OPENAI_API_KEY_FILE: '/nonexistent/key' },
      key: 'providers.openai.apiKey',
      text: /ENOENT/,
    },
    {
      name: 'secret set twice',
      env: { OPENAI_API_KEY: 'sk-aaaaaaaaaa', OPENAI_API_KEY_FILE: '/tmp/x' },
      key: 'providers.openai.apiKey',
      text: /only one/,
    },
    {
      name: 'boolean that is not',
      env: { LOCAL_LLM_PROBE: 'maybe' },
      key: 'localProbe.enabled',
      text: /LOCAL_LLM_PROBE/,
    },
  ];

  it.each(cases)('reports $name with the key, the value and a fix', ({ env, file, key, text, source }) => {
    const error = configError(env ?? {}, file);
    const problem = error.problems.find((p) => p.key === key);
    expect(problem, `problems were: ${error.message}`).toBeDefined();
    expect(`${problem?.problem} fix: ${problem?.fix}`).toMatch(text);
    expect(problem?.fix.length).toBeGreaterThan(5);
    if (source) expect(problem?.source).toBe(source);
    expect(error.message).toContain(key);
  });

  it('accepts the example config file, with keys from the environment', () => {
    const config = loadConfig({
      env: {
        AGENT_CONFIG: 'agent.config.example.json',
        OPENAI_API_KEY: 'sk-example-1',
        ANTHROPIC_API_KEY: 'sk-example-2',
      },
      cwd: join(import.meta.dirname, '../../../..'),
    });
    expect(config.providers.map((p) => p.id)).toEqual(['openai', 'anthropic']);
  });

  it('reads alert targets as channel:conversation and refuses a channel that is not configured', () => {
    const telegram = { channels: { telegram: { botToken: '123456:AAFakeTokenForTestsOnly_abcdefghij' } } };
    const config = loadConfig({ env: { ALERT_NOTIFY: 'telegram:555' }, cwd: withFile(telegram) });
    expect(config.alerts.notify).toEqual([{ channel: 'telegram', conversation: '555' }]);

    const unconfigured = configError({ ALERT_NOTIFY: 'slack:D0123' }, telegram);
    expect(unconfigured.message).toContain('alerts.notify.0.channel');
    expect(unconfigured.message).toContain('configure channels.slack or remove this alert target');
    const malformed = configError({ ALERT_NOTIFY: 'telegram' }, telegram);
    expect(malformed.message).toContain('alerts.notify.0');
  });

  it('never shows a secret value in an error', () => {
    const error = configError({ HTTP_HOST: '0.0.0.0', OPENAI_API_KEY: 'x', HTTP_AUTH_TOKENS: 'abc-secret' });
    expect(error.message).not.toContain('abc-secret');
    expect(error.message).toContain('****');
  });
});
