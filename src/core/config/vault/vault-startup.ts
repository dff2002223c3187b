import { isConfigError } from '../config-error.js';
import { isVaultError, VaultClient, type VaultError } from './vault-client.js';
import { type VaultLogger, VaultSecretSource } from './vault-secret-source.js';
import { readVaultSettings, type VaultSettings } from './vault-settings.js';

export interface VaultStartupDeps {
  fetch?: typeof globalThis.fetch;
  readFile?: (path: string) => string;
  /** Before the agent's logger exists: default one line on stderr per warning. */
  logger?: VaultLogger;
}

export interface VaultStartup {
  /** The env to pass to `loadConfig`: the given one plus Vault's secrets (explicit variables win). */
  env: NodeJS.ProcessEnv;
  /** The source, already read once and not yet refreshing: `start()` it where it is used. */
  source: VaultSecretSource | undefined;
  settings: VaultSettings | undefined;
}

/**
 * When `VAULT_ADDR` is set, reads the agent's secret from Vault and merges it into `env`.
 * Throws `ConfigError` for incomplete Vault settings and `VaultError` when Vault cannot be read.
 */
export async function loadVaultSecrets(
  env: NodeJS.ProcessEnv,
  deps: VaultStartupDeps = {},
): Promise<VaultStartup> {
  const settings = readVaultSettings(env, deps.readFile);
  if (!settings) return { env, source: undefined, settings: undefined };
  const source = new VaultSecretSource({
    client: new VaultClient({
      addr: settings.addr,
      auth: settings.auth,
      ...(settings.namespace ? { namespace: settings.namespace } : {}),
      timeoutMs: settings.timeoutMs,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    }),
    mount: settings.mount,
    path: settings.path,
    refreshMs: settings.refreshMs,
    env,
    logger: deps.logger ?? stderrLogger,
  });
  await source.refresh();
  return { env: source.mergeInto(env), source, settings };
}

const stderrLogger: VaultLogger = {
  warn(fields, message) {
    const keys = Array.isArray(fields.keys) ? ` ${(fields.keys as string[]).join(', ')}` : '';
    process.stderr.write(`warning: ${message}:${keys}\n`);
  },
};

/** The start-up message for a `VaultError`: what failed, and what to change. */
export function formatVaultStartupError(error: VaultError): string {
  return `vault: ${error.message}\n  fix: ${vaultFix(error)}`;
}

function vaultFix(error: VaultError): string {
  switch (error.code) {
    case 'vault_unreachable':
      return 'check VAULT_ADDR (scheme, host and port of the Vault API), that Vault is up and unsealed, and the network path to it; or unset VAULT_ADDR to take secrets from the environment';
    case 'vault_denied':
      return 'check VAULT_TOKEN (or VAULT_ROLE_ID/VAULT_SECRET_ID) and that its policy allows "read" on the secret';
    case 'vault_not_found':
      return 'check VAULT_KV_MOUNT (default "secret") and VAULT_SECRET_PATH, or write the secret (vault kv put)';
    default:
      return 'check that VAULT_ADDR points at the Vault API and VAULT_KV_MOUNT is a KV version 2 engine';
  }
}

/** The shape of a `doctor` finding (`Finding` in src/core/doctor.ts). */
export interface VaultFinding {
  check: string;
  ok: boolean;
  severity: 'error' | 'warning' | 'info';
  detail: string;
  fix?: string;
}

/**
 * A `doctor` finding about Vault: not used, misconfigured, unreadable (with the fix), or which
 * secrets it supplies (names only) and which the environment overrides.
 */
export async function checkVault(env: NodeJS.ProcessEnv, deps: VaultStartupDeps = {}): Promise<VaultFinding> {
  const check = 'vault';
  let result: VaultStartup;
  try {
    result = await loadVaultSecrets(env, { ...deps, logger: deps.logger ?? { warn() {} } });
  } catch (error) {
    if (isConfigError(error)) {
      return {
        check,
        ok: false,
        severity: 'error',
        detail: error.problems.map((p) => `${p.key} ${p.problem}`).join('; '),
        fix: error.problems.map((p) => p.fix).join('; '),
      };
    }
    if (isVaultError(error)) {
      return { check, ok: false, severity: 'error', detail: error.message, fix: vaultFix(error) };
    }
    throw error;
  }
  const { source, settings } = result;
  if (!source || !settings) {
    return {
      check,
      ok: true,
      severity: 'info',
      detail: 'not used (VAULT_ADDR is not set); secrets come from the environment and *_FILE files',
    };
  }
  const supplied = source.names();
  return {
    check,
    ok: true,
    severity: supplied.length === 0 ? 'warning' : 'info',
    detail:
      `${settings.addr} ${settings.mount}/${settings.path}` +
      `${source.version === undefined ? '' : ` version ${source.version}`}: ` +
      (supplied.length === 0
        ? 'supplies no secret the environment does not already set'
        : `supplies ${supplied.join(', ')}`) +
      (settings.refreshMs > 0
        ? `; re-read every ${settings.refreshMs} ms`
        : '; not re-read (VAULT_REFRESH_MS=0)'),
    ...(supplied.length === 0
      ? { fix: "put the agent's secrets under their env names (e.g. OPENAI_API_KEY) in the Vault secret" }
      : {}),
  };
}
