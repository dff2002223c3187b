import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './config-error.js';
import { ENV_OVERRIDES, type EnvOverride, SECRET_KEYS } from './env-overrides.js';
import { type AgentConfig, configSchema } from './schema.js';
import { maskSecret } from './secrets.js';

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Directory where `agent.config.json` is looked for. Default: the working directory. */
  cwd?: string;
  readFile?: (path: string) => string;
}

type RawConfig = Record<string, unknown>;
const DEFAULT_CONFIG_FILE = 'agent.config.json';

/**
 * Reads the config file (if any), applies environment overrides and `*_FILE` secrets, and
 * validates the result. Throws one `ConfigError` listing every problem; returns a frozen config.
 */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<AgentConfig> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const problems: ConfigProblem[] = [];
  /** Which environment variable set each dotted path, so errors can name it. */
  const origins = new Map<string, string>();

  const fileName = env.AGENT_CONFIG;
  const raw = readConfigFile(fileName ? resolve(cwd, fileName) : resolve(cwd, DEFAULT_CONFIG_FILE), {
    required: Boolean(fileName),
    readFile,
    problems,
  });

  for (const override of [...ENV_OVERRIDES, ...providerKeyOverrides(raw)]) {
    const text = readEnvValue(override, env, readFile, problems);
    if (text === undefined) continue;
    const path = applyOverride(raw, override, coerce(text, override));
    origins.set(
      path.join('.'),
      override.secret && env[`${override.env}_FILE`] ? `${override.env}_FILE` : override.env,
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(parsed.error.issues.map((issue) => toProblem(issue, raw, origins)));
  return deepFreeze(parsed.data);
}

function readConfigFile(
  path: string,
  ctx: { required: boolean; readFile: (path: string) => string; problems: ConfigProblem[] },
): RawConfig {
  let text: string;
  try {
    text = ctx.readFile(path);
  } catch (error) {
    if (ctx.required || (error as NodeJS.ErrnoException).code !== 'ENOENT') {
      ctx.problems.push({
        key: 'AGENT_CONFIG',
        source: 'environment',
        value: path,
        problem: `cannot read the config file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        fix: 'point AGENT_CONFIG at a readable JSON file, or unset it to use the defaults',
      });
    }
    return {};
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error('not a JSON object');
    return value as RawConfig;
  } catch (error) {
    ctx.problems.push({
      key: '(config file)',
      source: path,
      value: undefined,
      problem: `is not a valid JSON object: ${(error as Error).message}`,
      fix: 'fix the JSON syntax; see agent.config.example.json',
    });
    return {};
  }
}

/**
 * `PROVIDER_<ID>_API_KEY` (or `_FILE`) for every provider in the config file, so no key needs
 * to be written into it: `deepseek` reads `PROVIDER_DEEPSEEK_API_KEY`, `my-azure` reads
 * `PROVIDER_MY_AZURE_API_KEY`.
 */
function providerKeyOverrides(raw: RawConfig): EnvOverride[] {
  if (!Array.isArray(raw.providers)) return [];
  return (raw.providers as RawConfig[])
    .map((p) => p?.id)
    .filter((id): id is string => typeof id === 'string' && id !== 'openai' && id !== 'anthropic')
    .map((id) => ({
      env: `PROVIDER_${id.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_API_KEY`,
      path: ['providers', id, 'apiKey'],
      type: 'string' as const,
      secret: true,
    }));
}

function readEnvValue(
  override: EnvOverride,
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string,
  problems: ConfigProblem[],
): string | undefined {
  const direct = env[override.env];
  const filePath = override.secret ? env[`${override.env}_FILE`] : undefined;
  if (direct !== undefined && filePath !== undefined) {
    problems.push({
      key: override.path.join('.'),
      source: `${override.env} and ${override.env}_FILE`,
      value: undefined,
      problem: 'is set twice',
      fix: `set only one of ${override.env} or ${override.env}_FILE`,
    });
    return undefined;
  }
  if (filePath === undefined) return direct === '' ? undefined : direct;
  try {
    // Secret files usually end with a newline that is not part of the secret.
    return readFile(filePath).replace(/\r?\n$/, '');
  } catch (error) {
    problems.push({
      key: override.path.join('.'),
      source: `${override.env}_FILE`,
      value: filePath,
      problem: `cannot read the secret file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      fix: `make ${filePath} readable by the agent, or set ${override.env} instead`,
    });
    return undefined;
  }
}

function coerce(text: string, override: EnvOverride): unknown {
  switch (override.type) {
    case 'integer':
      // Keep the text when it is not a number, so the schema reports the value as given.
      return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(text)) return true;
      if (/^(0|false|no|off)$/i.test(text)) return false;
      return text;
    case 'csv':
      return text
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part.length > 0);
    default:
      return text;
  }
}

/** Applies one override to the raw config and returns the concrete path it wrote. */
function applyOverride(raw: RawConfig, override: EnvOverride, value: unknown): (string | number)[] {
  const [head, ...rest] = override.path;
  if (head === 'providers') {
    const [id, key] = rest as [string, string];
    if (!Array.isArray(raw.providers)) raw.providers = [];
    const providers = raw.providers as RawConfig[];
    let index = providers.findIndex((p) => p?.id === id);
    if (index === -1) {
      providers.push({ id, kind: id === 'anthropic' ? 'anthropic' : 'openai' });
      index = providers.length - 1;
    }
    (providers[index] as RawConfig)[key] = value;
    return ['providers', index, key];
  }
  let node = raw;
  for (const segment of override.path.slice(0, -1)) {
    if (typeof node[segment] !== 'object' || node[segment] === null) node[segment] = {};
    node = node[segment] as RawConfig;
  }
  node[override.path[override.path.length - 1] as string] = value;
  return [...override.path];
}

const FIX_HINTS: Record<string, string> = {
  'http.host': 'set HTTP_HOST to an address such as 127.0.0.1 or 0.0.0.0',
  'http.port': 'set HTTP_PORT to a port number between 0 and 65535, e.g. 8080',
  'http.authTokens':
    'set HTTP_AUTH_TOKENS to comma-separated tokens of 16+ characters (e.g. from `openssl rand -hex 24`)',
  'http.bodyLimitBytes': 'use a size in bytes between 1024 and 10485760',
  'memory.dataDir': 'set DATA_DIR to a writable directory',
  'redis.url': 'set REDIS_URL like redis://:password@host:6379/0, or unset it to use the local log',
  'redis.keyPrefix': 'use letters, digits, "_", "." or "-"',
  'redis.sentinels':
    'set REDIS_SENTINELS to comma-separated host:port pairs, e.g. 10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379',
  'redis.masterName':
    "set REDIS_MASTER_NAME to the name in the sentinels' `sentinel monitor <name> ...` line",
  'log.level': 'set LOG_LEVEL to one of fatal, error, warn, info, debug, trace, silent',
  'localProbe.enabled': 'set LOCAL_LLM_PROBE to true or false',
  'channels.telegram.botToken':
    'set TELEGRAM_BOT_TOKEN to the token @BotFather gave, or remove channels.telegram',
  'channels.telegram.webhookSecret':
    'set TELEGRAM_WEBHOOK_SECRET (e.g. from `openssl rand -hex 24`), or use mode "polling"',
  'channels.discord.botToken':
    'set DISCORD_BOT_TOKEN to the bot token from the Developer Portal, or remove channels.discord',
  'channels.slack.botToken': 'set SLACK_BOT_TOKEN to the xoxb- token, or remove channels.slack',
  'channels.slack.signingSecret':
    'set SLACK_SIGNING_SECRET (app settings > Basic Information > Signing Secret), or use mode "socket"',
  'channels.slack.appToken': 'set SLACK_APP_TOKEN to an app-level xapp- token with connections:write',
};

function toProblem(issue: z.core.$ZodIssue, raw: RawConfig, origins: Map<string, string>): ConfigProblem {
  const key = issue.path.map(String).join('.') || '(root)';
  const value = valueAt(raw, issue.path);
  // An array item (`http.authTokens.0`) takes its origin, secrecy and hint from its parents.
  const prefixes = issue.path.map((_, i) =>
    issue.path
      .slice(0, issue.path.length - i)
      .map(String)
      .join('.'),
  );
  const origin = firstDefined(prefixes.map((p) => origins.get(p)));
  const secret = issue.path.some((segment) => SECRET_KEYS.has(String(segment)));
  const params = (issue as { params?: { fix?: string } }).params;
  const hint = firstDefined(
    prefixes.map((p) => FIX_HINTS[p] ?? providerHint(p.replace(/^providers\.\d+\./, 'providers.*.'))),
  );
  return {
    key,
    source: origin ?? (value === undefined ? undefined : 'config file'),
    value: value === undefined ? undefined : showValue(value, secret),
    problem: describeIssue(issue),
    fix: params?.fix ?? hint ?? 'correct or remove this key (see agent.config.example.json)',
  };
}

function firstDefined<T>(values: (T | undefined)[]): T | undefined {
  return values.find((v) => v !== undefined);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `has unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_value')
    return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'invalid_union')
    return 'has an unknown "kind"; must be "openai", "azure-openai" or "anthropic"';
  return issue.message.replace(/^Invalid input: /, '');
}

function providerHint(genericKey: string): string | undefined {
  if (genericKey === 'providers.*.apiKey')
    return "set OPENAI_API_KEY or ANTHROPIC_API_KEY (or their *_FILE variants), or the provider's apiKey";
  if (genericKey === 'providers.*.baseURL')
    return "use the endpoint's base URL, e.g. http://127.0.0.1:11434/v1";
  if (genericKey === 'providers.*.kind')
    return 'set kind to "openai" (any OpenAI-compatible endpoint), "azure-openai" or "anthropic"';
  return undefined;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let node = raw;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

function showValue(value: unknown, secret: boolean): string {
  if (secret) {
    if (Array.isArray(value)) return `[${value.map((v) => maskSecret(String(v))).join(', ')}]`;
    return maskSecret(String(value));
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** A copy of the config with every secret masked, for `doctor` and `/status`. */
export function redactConfig(config: Readonly<AgentConfig>): unknown {
  const walk = (value: unknown, key: string): unknown => {
    if (SECRET_KEYS.has(key) && value !== undefined) {
      return Array.isArray(value) ? value.map((v) => maskSecret(String(v))) : maskSecret(String(value));
    }
    if (Array.isArray(value)) return value.map((v) => walk(v, ''));
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    }
    return value;
  };
  return walk(config, '');
}

/** Every secret value in the config, so the logger can redact them wherever they appear. */
export function collectSecrets(config: Readonly<AgentConfig>): string[] {
  const secrets: string[] = [...config.http.authTokens];
  if (config.redis.url) {
    const password = safePassword(config.redis.url);
    if (password) secrets.push(password);
  }
  if (config.redis.password) secrets.push(config.redis.password);
  if (config.redis.sentinelPassword) secrets.push(config.redis.sentinelPassword);
  for (const provider of config.providers) if (provider.apiKey) secrets.push(provider.apiKey);
  const { telegram, discord, slack } = config.channels;
  for (const value of [
    telegram?.botToken,
    telegram?.webhookSecret,
    discord?.botToken,
    slack?.botToken,
    slack?.signingSecret,
    slack?.appToken,
  ]) {
    if (value) secrets.push(value);
  }
  return secrets.filter((s) => s.length >= 6);
}

function safePassword(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}
