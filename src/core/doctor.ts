import { accessSync, constants, mkdirSync } from 'node:fs';
import { createProvider } from '../providers/create-provider.js';
import { redactConfig } from './config/load-config.js';
import type { AgentConfig } from './config/schema.js';
import { checkPlatforms } from './doctor/platform-checks.js';
import { checkPm2 } from './doctor/pm2-checks.js';
import { checkWallet } from './doctor/wallet-checks.js';
import { isRedisConfigured } from './redis/redis-connection.js';
import { checkRedisDependency } from './redis/redis-doctor.js';

export interface Finding {
  check: string;
  ok: boolean;
  /** Warnings do not stop the agent from running. */
  severity: 'error' | 'warning' | 'info';
  detail: string;
  fix?: string;
}

/**
 * Checks every dependency the configuration names and says, for each, what is wrong and how to
 * fix it. The agent can run when no finding has severity `error` and `ok: false`.
 */
export async function runDoctor(config: Readonly<AgentConfig>): Promise<Finding[]> {
  const findings: Finding[] = [];
  // Platforms and the wallet are independent of the rest: checked meanwhile, reported after.
  const platforms = checkPlatforms(config.channels);
  const wallet = checkWallet(config.wallet);
  if (isRedisConfigured(config)) findings.push(...(await checkRedisDependency(config.redis)));
  else findings.push(checkDataDir(config.memory.dataDir));

  if (config.providers.length === 0) {
    findings.push({
      check: 'providers',
      ok: false,
      severity: 'warning',
      detail: 'no LLM provider configured; commands work, agent turns do not',
      fix: 'set OPENAI_API_KEY or ANTHROPIC_API_KEY (or OPENAI_BASE_URL for a local server)',
    });
  }
  for (const providerConfig of config.providers) {
    const provider = createProvider(providerConfig);
    try {
      await provider.probe({ signal: AbortSignal.timeout(10_000) });
      findings.push({
        check: `provider ${provider.id}`,
        ok: true,
        severity: 'info',
        detail: `${provider.kind} ${provider.model} answers`,
      });
    } catch (error) {
      findings.push({
        check: `provider ${provider.id}`,
        ok: false,
        severity: 'error',
        detail: (error as Error).message,
        fix: 'check the key, base URL and network path to the provider',
      });
    }
  }
  findings.push(...(await platforms), ...(await wallet), ...checkPm2());
  return findings;
}

function checkDataDir(dataDir: string): Finding {
  try {
    mkdirSync(dataDir, { recursive: true });
    accessSync(dataDir, constants.W_OK);
    return { check: 'memory log', ok: true, severity: 'info', detail: `${dataDir} is writable` };
  } catch (error) {
    return {
      check: 'memory log',
      ok: false,
      severity: 'error',
      detail: `${dataDir} is not writable (${(error as NodeJS.ErrnoException).code})`,
      fix: 'set DATA_DIR to a directory the agent may write, or fix its permissions',
    };
  }
}

export function formatDoctorReport(config: Readonly<AgentConfig>, findings: Finding[]): string {
  const lines = [
    'Resolved configuration (secrets masked):',
    JSON.stringify(redactConfig(config), null, 2),
    '',
    'Checks:',
  ];
  for (const f of findings) {
    const mark = f.ok ? 'ok  ' : f.severity === 'error' ? 'FAIL' : 'warn';
    lines.push(`  [${mark}] ${f.check}: ${f.detail}`);
    if (!f.ok && f.fix) lines.push(`         fix: ${f.fix}`);
  }
  return lines.join('\n');
}

export function doctorExitCode(findings: Finding[]): number {
  return findings.some((f) => !f.ok && f.severity === 'error') ? 1 : 0;
}
