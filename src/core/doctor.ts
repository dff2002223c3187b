import { accessSync, constants, mkdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { createProvider } from '../providers/create-provider.js';
import { redactConfig } from './config/load-config.js';
import type { AgentConfig } from './config/schema.js';

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
  if (config.redis.url) findings.push(...(await checkRedis(config.redis.url)));
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

async function checkRedis(url: string): Promise<Finding[]> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 3000,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const findings: Finding[] = [
      { check: 'redis', ok: true, severity: 'info', detail: `answers, version ${version}` },
    ];
    try {
      const [, appendonly] = (await redis.config('GET', 'appendonly')) as string[];
      const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
      findings.push({
        check: 'redis appendonly',
        ok: appendonly === 'yes',
        severity: 'warning',
        detail: `appendonly ${appendonly}`,
        ...(appendonly === 'yes'
          ? {}
          : { fix: 'set `appendonly yes` (and `appendfsync always` for no loss on a Redis crash)' }),
      });
      findings.push({
        check: 'redis maxmemory-policy',
        ok: policy === 'noeviction',
        severity: 'warning',
        detail: `maxmemory-policy ${policy}`,
        ...(policy === 'noeviction'
          ? {}
          : { fix: 'set `maxmemory-policy noeviction` so Redis never drops conversation keys' }),
      });
    } catch {
      findings.push({
        check: 'redis config',
        ok: true,
        severity: 'warning',
        detail: 'CONFIG GET is not allowed; check AOF and maxmemory-policy by hand',
      });
    }
    return findings;
  } catch (error) {
    return [
      {
        check: 'redis',
        ok: false,
        severity: 'error',
        detail: `does not answer: ${(error as Error).message}`,
        fix: 'start Redis or correct REDIS_URL',
      },
    ];
  } finally {
    redis.disconnect();
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
