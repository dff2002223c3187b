import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../../src/core/config/config-error.js';
import { loadConfig } from '../../../../src/core/config/load-config.js';

/** A fresh directory with no config file: loadConfig's `cwd` for the embedded defaults. */
export const emptyDir = () => mkdtempSync(join(tmpdir(), 'agent-config-'));

/** A directory holding `agent.config.json` with `file` (a string is written as it is). */
export function withFile(file: unknown): string {
  const cwd = emptyDir();
  writeFileSync(join(cwd, 'agent.config.json'), typeof file === 'string' ? file : JSON.stringify(file));
  return cwd;
}

/** The ConfigError loadConfig throws for `env` (and a config file, if given); fails if none. */
export function configError(env: Record<string, string>, file?: unknown): ConfigError {
  try {
    loadConfig({ env, cwd: file === undefined ? emptyDir() : withFile(file) });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
