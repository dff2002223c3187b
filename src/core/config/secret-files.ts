import { ConfigError } from './config-error.js';
import { isSecretEnvName } from './vault/vault-settings.js';

const DEFAULT_REFRESH_MS = 60_000;

/**
 * How often secrets from `NAME_FILE` files are read again, since a secret manager (Kubernetes,
 * Docker, Vault Agent) may rewrite them in place: `SECRET_FILES_REFRESH_MS`, default 60 s, 0
 * never. 0 as well when no secret comes from a file.
 */
export function secretFilesRefreshMs(env: NodeJS.ProcessEnv): number {
  const usesFiles = Object.keys(env).some(
    (name) => name.endsWith('_FILE') && env[name] !== '' && isSecretEnvName(name.slice(0, -'_FILE'.length)),
  );
  if (!usesFiles) return 0;
  const text = env.SECRET_FILES_REFRESH_MS;
  if (text === undefined || text === '') return DEFAULT_REFRESH_MS;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isNaN(value) || (value > 0 && value < 100)) {
    throw new ConfigError([
      {
        key: 'SECRET_FILES_REFRESH_MS',
        source: 'environment',
        value: text,
        problem: 'must be 0 (never) or a whole number of milliseconds of at least 100',
        fix: `set SECRET_FILES_REFRESH_MS to e.g. ${DEFAULT_REFRESH_MS}, or unset it`,
      },
    ]);
  }
  return value;
}
