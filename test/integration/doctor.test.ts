import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { MAIN_JS } from '../support/agent-process.js';
import { freePort } from '../support/free-port.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

function doctor(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN_JS, 'doctor'], {
      env: { PATH: process.env.PATH ?? '', LOCAL_LLM_PROBE: 'false', ...env },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stderr.on('data', (c: Buffer) => (output += c));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('doctor', () => {
  let redis: TestRedis;
  let fake: FakeOpenAi;
  beforeAll(async () => {
    redis = await startRedis();
    fake = await startFakeOpenAi();
  });
  afterAll(async () => {
    await redis.stop();
    await fake.close();
  });

  it('prints the resolved configuration with secrets masked and passes when everything answers', async () => {
    const { code, output } = await doctor({
      REDIS_URL: `redis://:doctor-secret-pw@127.0.0.1:${redis.port}`,
      OPENAI_API_KEY: 'sk-doctor-secret-key',
      OPENAI_BASE_URL: fake.baseURL,
      HTTP_AUTH_TOKENS: 'doctor-token-0123456789',
    });
    expect(output).not.toMatch(/doctor-secret-pw|sk-doctor-secret-key|doctor-token-0123456789/);
    expect(output).toContain('"url": "red****');
    expect(output).toContain('"apiKey": "sk-****ey"');
    const ok = { code, output };
    expect(ok.output).toMatch(/\[ok {2}\] redis: answers, version \d+\.\d+/);
    expect(ok.output).toMatch(/\[ok {2}\] redis appendonly: appendonly yes/);
    expect(ok.output).toMatch(/\[ok {2}\] redis maxmemory-policy: maxmemory-policy noeviction/);
    expect(ok.output).toMatch(/\[ok {2}\] provider openai: openai gpt-4o-mini answers/);
    expect(ok.code).toBe(0);
  });

  it('fails with a fix for each dependency that does not answer', async () => {
    const deadPort = await freePort();
    const { code, output } = await doctor({
      REDIS_URL: `redis://127.0.0.1:${deadPort}`,
      OPENAI_BASE_URL: `http://127.0.0.1:${deadPort}/v1`,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'agent-doctor-')),
    });
    expect(output).toMatch(/\[FAIL\] redis: does not answer[\s\S]*fix: start Redis or correct REDIS_URL/);
    expect(output).toMatch(
      /\[FAIL\] provider openai: provider "openai" failed \(connection\)[\s\S]*fix: check the key/,
    );
    expect(code).toBe(1);
  });

  it('exits 78 with the config error instead of running checks on a bad config', async () => {
    const { code, output } = await doctor({ HTTP_PORT: 'x' });
    expect(code).toBe(78);
    expect(output).toMatch(/http\.port \(from HTTP_PORT\) = "x"/);
  });
});
