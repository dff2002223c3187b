import { ConfigError, type ConfigProblem } from './config-error.js';
import { isSecretEnvName, millisecondsSetting } from './vault/vault-settings.js';

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
  const problems: ConfigProblem[] = [];
  const everyMs = millisecondsSetting(env, 'SECRET_FILES_REFRESH_MS', 60_000, problems, {
    min: 100,
    zeroAllowed: true,
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return everyMs;
}
