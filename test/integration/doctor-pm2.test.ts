import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAIN_JS } from '../support/agent-process.js';

const REPO = resolve(import.meta.dirname, '../..');

function doctor(cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN_JS, 'doctor'], {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        LOCAL_LLM_PROBE: 'false',
        DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-doctor-pm2-data-')),
      },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stderr.on('data', (c: Buffer) => (output += c));
    child.on('exit', (code) => done({ code, output }));
  });
}

/** A scratch directory holding the repository's ecosystem file, or `ecosystem` as its content. */
function project(ecosystem?: string, built = true): string {
  const dir = mkdtempSync(join(tmpdir(), 'agent-doctor-pm2-'));
  if (ecosystem === undefined)
    copyFileSync(join(REPO, 'ecosystem.config.cjs'), join(dir, 'ecosystem.config.cjs'));
  else writeFileSync(join(dir, 'ecosystem.config.cjs'), ecosystem);
  if (built) {
    mkdirSync(join(dir, 'dist'));
    writeFileSync(join(dir, 'dist', 'main.js'), '');
  }
  return dir;
}

describe('doctor: PM2', () => {
  it("checks the repository's ecosystem file and finds pm2 in its node_modules", async () => {
    const { code, output } = await doctor(REPO);
    expect(output).toContain('[ok  ] pm2 ecosystem: app "agent" runs dist/main.js start\n');
    expect(output).toMatch(/\[ok {2}\] pm2: pm2 \d+\.\d+\.\d+ is installed \(.*node_modules\/pm2\)\n/);
    expect(code).toBe(0);
  });

  it('warns, never fails, when pm2 is not installed', async () => {
    const { code, output } = await doctor(project());
    expect(output).toContain('[ok  ] pm2 ecosystem: app "agent" runs dist/main.js start\n');
    expect(output).toMatch(
      /\[warn\] pm2: pm2 is not installed in node_modules here\n\s+fix: npm install pm2/,
    );
    expect(code).toBe(0);
  });

  it('warns when the ecosystem file does not load', async () => {
    const { code, output } = await doctor(project('module.exports = { apps: [ {'));
    expect(output).toMatch(
      /\[warn\] pm2 ecosystem: ecosystem\.config\.cjs does not load: .+\n\s+fix: fix .*ecosystem\.config\.cjs so that/,
    );
    expect(code).toBe(0);
  });

  it('warns when no app runs dist/main.js, or it is not built', async () => {
    const other = await doctor(project("module.exports = { apps: [{ name: 'x', script: 'server.js' }] };"));
    expect(other.output).toMatch(
      /\[warn\] pm2 ecosystem: ecosystem\.config\.cjs has no app whose script is dist\/main\.js \(1 app found\)\n\s+fix: add an app/,
    );
    expect(other.code).toBe(0);
    const unbuilt = await doctor(project(undefined, false));
    expect(unbuilt.output).toMatch(
      /\[warn\] pm2 ecosystem: app "agent" runs dist\/main\.js, which is not built\n\s+fix: run npm run build/,
    );
    expect(unbuilt.code).toBe(0);
  });

  it('says nothing about PM2 without an ecosystem file', async () => {
    const { code, output } = await doctor(mkdtempSync(join(tmpdir(), 'agent-doctor-nopm2-')));
    expect(output).toContain('Checks:');
    expect(output).not.toMatch(/\] pm2/);
    expect(code).toBe(0);
  });
});
