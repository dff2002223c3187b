import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { Finding } from '../doctor.js';

const ECOSYSTEM_FILE = 'ecosystem.config.cjs';
const SCRIPT = 'dist/main.js';

interface Pm2App {
  name?: unknown;
  script?: unknown;
  cwd?: unknown;
  args?: unknown;
}

/**
 * PM2, when `ecosystem.config.cjs` is in the working directory: the file loads as PM2 loads it
 * (`require`), one app runs `dist/main.js`, and `pm2` is installed. Warnings and notes only: the
 * agent runs without PM2.
 */
export function checkPm2(cwd: string = process.cwd()): Finding[] {
  const file = join(cwd, ECOSYSTEM_FILE);
  if (!existsSync(file)) return [];
  const findings: Finding[] = [];
  const require = createRequire(file);
  let exported: unknown;
  try {
    // A fresh read each time, as `pm2 start` does.
    delete require.cache[file];
    exported = require(file);
  } catch (error) {
    findings.push({
      check: 'pm2 ecosystem',
      ok: false,
      severity: 'warning',
      detail: `${ECOSYSTEM_FILE} does not load: ${firstLine(error)}`,
      fix: `fix ${file} so that \`node -e "require('./${ECOSYSTEM_FILE}')"\` succeeds`,
    });
  }
  if (findings.length === 0) findings.push(checkApps(exported, cwd));
  findings.push(checkPm2Installed(cwd));
  return findings;
}

function checkApps(exported: unknown, cwd: string): Finding {
  const apps = (exported as { apps?: unknown } | undefined)?.apps;
  const list: Pm2App[] = Array.isArray(apps)
    ? apps
    : apps && typeof apps === 'object'
      ? [apps as Pm2App]
      : [];
  const expected = resolve(cwd, SCRIPT);
  const app = list.find(
    (a) =>
      typeof a.script === 'string' && resolve(typeof a.cwd === 'string' ? a.cwd : cwd, a.script) === expected,
  );
  if (app === undefined) {
    return {
      check: 'pm2 ecosystem',
      ok: false,
      severity: 'warning',
      detail: `${ECOSYSTEM_FILE} has no app whose script is ${SCRIPT} (${list.length} app${list.length === 1 ? '' : 's'} found)`,
      fix: `add an app with script: '${SCRIPT}', args: 'start' and cwd: __dirname to module.exports.apps`,
    };
  }
  const built = existsSync(expected);
  const name = typeof app.name === 'string' ? `"${app.name}"` : '(unnamed)';
  return {
    check: 'pm2 ecosystem',
    ok: built,
    severity: built ? 'info' : 'warning',
    detail: built
      ? `app ${name} runs ${SCRIPT}${typeof app.args === 'string' ? ` ${app.args}` : ''}`
      : `app ${name} runs ${SCRIPT}, which is not built`,
    ...(built ? {} : { fix: 'run npm run build before pm2 start' }),
  };
}

function checkPm2Installed(cwd: string): Finding {
  try {
    const manifest = createRequire(join(cwd, 'package.json')).resolve('pm2/package.json');
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string };
    return {
      check: 'pm2',
      ok: true,
      severity: 'info',
      detail: `pm2 ${version ?? '?'} is installed (${dirname(manifest)})`,
    };
  } catch {
    return {
      check: 'pm2',
      ok: false,
      severity: 'warning',
      detail: 'pm2 is not installed in node_modules here',
      fix: 'npm install pm2 (or npm install -g pm2) to run the agent under PM2; without it, run node dist/main.js start',
    };
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? '').slice(0, 200);
}
