import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigProblem } from '../config-error.js';
import { ENV_OVERRIDES } from '../env-overrides.js';
import type { VaultAuth } from './vault-client.js';

/**
 * Vault is configured by the environment only: it is where the configuration gets its secrets,
 * so it cannot itself come from the config file.
 *
 * - `VAULT_ADDR`: enables Vault, e.g. `https://vault.internal:8200`
 * - `VAULT_TOKEN` or `VAULT_TOKEN_FILE`: token auth; or
 * - `VAULT_ROLE_ID` + `VAULT_SECRET_ID` (or `VAULT_SECRET_ID_FILE`): AppRole auth
 *   (`VAULT_APPROLE_MOUNT`, default `approle`)
 * - `VAULT_NAMESPACE`: Vault Enterprise namespace (optional)
 * - `VAULT_KV_MOUNT`: the KV v2 mount, default `secret`
 * - `VAULT_SECRET_PATH`: the secret under it, e.g. `agent/prod` (required)
 * - `VAULT_REFRESH_MS`: how often the secret is read again, default 60000 (0 turns refreshing off)
 * - `VAULT_TIMEOUT_MS`: per request, default 5000
 */
export interface VaultSettings {
  addr: string;
  auth: VaultAuth;
  namespace: string | undefined;
  mount: string;
  path: string;
  refreshMs: number;
  timeoutMs: number;
}

export const VAULT_ENV_NAMES = [
  'VAULT_ADDR',
  'VAULT_TOKEN',
  'VAULT_TOKEN_FILE',
  'VAULT_ROLE_ID',
  'VAULT_SECRET_ID',
  'VAULT_SECRET_ID_FILE',
  'VAULT_APPROLE_MOUNT',
  'VAULT_NAMESPACE',
  'VAULT_KV_MOUNT',
  'VAULT_SECRET_PATH',
  'VAULT_REFRESH_MS',
  'VAULT_TIMEOUT_MS',
] as const;

/** The settings, or undefined when `VAULT_ADDR` is not set. Throws one `ConfigError` listing every problem. */
export function readVaultSettings(
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): VaultSettings | undefined {
  const addr = nonEmpty(env.VAULT_ADDR);
  if (addr === undefined) return undefined;
  const problems: ConfigProblem[] = [];
  const problem = (key: string, value: string | undefined, text: string, fix: string) =>
    problems.push({ key, source: 'environment', value, problem: text, fix });

  if (!/^https?:\/\/[^/\s]+/i.test(addr)) {
    problem('VAULT_ADDR', addr, 'is not an http(s) URL', 'set VAULT_ADDR like https://vault.internal:8200');
  }
  const token = secretValue(env, 'VAULT_TOKEN', readFile, problems);
  const roleId = nonEmpty(env.VAULT_ROLE_ID);
  const secretId = secretValue(env, 'VAULT_SECRET_ID', readFile, problems);
  let auth: VaultAuth | undefined;
  if (token !== undefined && roleId !== undefined) {
    problem(
      'VAULT_TOKEN',
      undefined,
      'is set together with VAULT_ROLE_ID',
      'use either a token (VAULT_TOKEN) or AppRole (VAULT_ROLE_ID + VAULT_SECRET_ID), not both',
    );
  } else if (token !== undefined) {
    auth = { kind: 'token', token };
  } else if (roleId !== undefined && secretId !== undefined) {
    const mount = nonEmpty(env.VAULT_APPROLE_MOUNT);
    auth = { kind: 'approle', roleId, secretId, ...(mount ? { mount } : {}) };
  } else if (roleId !== undefined) {
    problem(
      'VAULT_SECRET_ID',
      undefined,
      'is missing',
      'set VAULT_SECRET_ID (or VAULT_SECRET_ID_FILE) for AppRole',
    );
  } else if (!problems.some((p) => p.key === 'VAULT_TOKEN' || p.key === 'VAULT_SECRET_ID')) {
    problem(
      'VAULT_TOKEN',
      undefined,
      'is missing: VAULT_ADDR is set but there is no way to log in',
      'set VAULT_TOKEN (or VAULT_TOKEN_FILE), or VAULT_ROLE_ID and VAULT_SECRET_ID; or unset VAULT_ADDR',
    );
  }
  const path = nonEmpty(env.VAULT_SECRET_PATH)?.replace(/^\/+|\/+$/g, '');
  if (!path) {
    problem(
      'VAULT_SECRET_PATH',
      undefined,
      'is missing',
      "set VAULT_SECRET_PATH to the secret holding the agent's keys, e.g. agent/prod",
    );
  }
  const refreshMs = millisecondsSetting(env, 'VAULT_REFRESH_MS', 60_000, problems, {
    min: 0,
    zeroAllowed: true,
  });
  const timeoutMs = millisecondsSetting(env, 'VAULT_TIMEOUT_MS', 5000, problems, {
    min: 100,
    zeroAllowed: false,
  });

  if (problems.length > 0 || !auth || !path) throw new ConfigError(problems);
  return {
    addr: addr.replace(/\/+$/, ''),
    auth,
    namespace: nonEmpty(env.VAULT_NAMESPACE),
    mount: (nonEmpty(env.VAULT_KV_MOUNT) ?? 'secret').replace(/^\/+|\/+$/g, ''),
    path,
    refreshMs,
    timeoutMs,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function secretValue(
  env: NodeJS.ProcessEnv,
  name: string,
  readFile: (path: string) => string,
  problems: ConfigProblem[],
): string | undefined {
  const direct = nonEmpty(env[name]);
  const file = nonEmpty(env[`${name}_FILE`]);
  if (direct !== undefined && file !== undefined) {
    problems.push({
      key: name,
      source: `${name} and ${name}_FILE`,
      value: undefined,
      problem: 'is set twice',
      fix: `set only one of ${name} or ${name}_FILE`,
    });
    return undefined;
  }
  if (file === undefined) return direct;
  try {
    return nonEmpty(readFile(file).replace(/\r?\n$/, ''));
  } catch (error) {
    problems.push({
      key: name,
      source: `${name}_FILE`,
      value: file,
      problem: `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      fix: `make ${file} readable by the agent, or set ${name} instead`,
    });
    return undefined;
  }
}

/**
 * A duration in whole milliseconds from the environment variable `name` (unset or empty:
 * `fallback`); a bad value is added to `problems`, naming the variable and the fix.
 */
export function millisecondsSetting(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  problems: ConfigProblem[],
  rule: { min: number; zeroAllowed: boolean },
): number {
  const text = nonEmpty(env[name]);
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isNaN(value) || (value < rule.min && !(rule.zeroAllowed && value === 0))) {
    problems.push({
      key: name,
      source: 'environment',
      value: text,
      problem: `must be a whole number of milliseconds${rule.min > 0 ? ` of at least ${rule.min}` : ''}`,
      fix: `set ${name} to e.g. ${fallback}`,
    });
    return fallback;
  }
  return value;
}

const SECRET_ENV_NAMES: ReadonlySet<string> = new Set(
  ENV_OVERRIDES.filter((o) => o.secret).map((o) => o.env),
);

/**
 * Whether a Vault key names one of the agent's secrets: a secret of `ENV_OVERRIDES`, or a
 * provider key `PROVIDER_<ID>_API_KEY` (the pattern `loadConfig` reads for providers of the
 * config file).
 */
export function isSecretEnvName(name: string): boolean {
  return SECRET_ENV_NAMES.has(name) || /^PROVIDER_[A-Z0-9_]+_API_KEY$/.test(name);
}

/**
 * The env name holding a provider's API key: `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, or
 * `PROVIDER_<ID>_API_KEY` (same rule as `providerKeyOverrides` in load-config.ts).
 */
export function providerKeyEnvName(providerId: string): string {
  if (providerId === 'openai') return 'OPENAI_API_KEY';
  if (providerId === 'anthropic') return 'ANTHROPIC_API_KEY';
  return `PROVIDER_${providerId.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_API_KEY`;
}

/**
 * Whether the environment sets `name` itself, directly or through `name_FILE`. Such a variable
 * wins over Vault, at start-up and on every refresh: an operator who sets a key explicitly
 * (to override a bad Vault value during an incident, say) must get exactly that key. An empty
 * variable counts as unset, as in `loadConfig`.
 */
export function envSetsExplicitly(env: NodeJS.ProcessEnv, name: string): boolean {
  return (env[name] !== undefined && env[name] !== '') || env[`${name}_FILE`] !== undefined;
}
