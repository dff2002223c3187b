import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/core/config/load-config.js';
import { doctorExitCode, type Finding, formatDoctorReport, runDoctor } from '../../../src/core/doctor.js';
import { freePort } from '../../support/free-port.js';
import { type SentinelGroup, startSentinelGroup } from '../../support/redis-sentinel.js';

const PASSWORD = 'primary-secret-41';
const SENTINEL_PASSWORD = 'sentinel-secret-42';

describe('doctor with Redis Sentinel', () => {
  let group: SentinelGroup;
  beforeAll(async () => {
    // A long down-after keeps the killed primary named by the sentinels while doctor looks at it.
    group = await startSentinelGroup({
      downAfterMs: 5000,
      password: PASSWORD,
      sentinelPassword: SENTINEL_PASSWORD,
    });
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
  });

  const doctor = async (env: Record<string, string>) => {
    const config = loadConfig({
      env: {
        REDIS_MASTER_NAME: group.masterName,
        REDIS_PASSWORD: PASSWORD,
        REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
        ...env,
      },
      // No config file there: the environment above is the whole configuration.
      cwd: group.dir,
    });
    const findings = await runDoctor(config);
    return { findings, report: formatDoctorReport(config, findings), code: doctorExitCode(findings) };
  };
  /** The Redis findings that are not ok (no provider is configured here, which doctor also reports). */
  const failing = (findings: Finding[]) => findings.filter((f) => !f.ok && f.check.startsWith('redis'));

  it('checks every sentinel, the quorum and the primary they name, with secrets masked', async () => {
    const { findings, report, code } = await doctor({ REDIS_SENTINELS: group.sentinels });
    const port = group.primaryPort();
    for (const sentinel of group.sentinels.split(','))
      expect(report).toContain(
        `[ok  ] redis sentinel ${sentinel}: answers; master "mymaster" is at 127.0.0.1:${port}`,
      );
    expect(report).toMatch(/\[ok {2}\] redis sentinel quorum "mymaster": OK 3 usable Sentinels/);
    expect(report).toMatch(
      new RegExp(
        `\\[ok  \\] redis master: 127\\.0\\.0\\.1:${port} answers, version \\d+\\.\\d+\\.\\d+, role master`,
      ),
    );
    expect(report).toMatch(/\[ok {2}\] redis appendonly: appendonly yes/);
    expect(report).toMatch(/\[ok {2}\] redis maxmemory-policy: maxmemory-policy noeviction/);
    expect(report).not.toMatch(new RegExp(`${PASSWORD}|${SENTINEL_PASSWORD}`));
    expect(failing(findings)).toEqual([]);
    expect(code).toBe(0);
  });

  it('names the fix for an unknown master name', async () => {
    const { findings, code } = await doctor({ REDIS_SENTINELS: group.sentinels, REDIS_MASTER_NAME: 'other' });
    const bad = failing(findings);
    expect(bad).toHaveLength(3);
    for (const f of bad) {
      expect(f.detail).toBe('answers but monitors no master named "other"');
      expect(f.fix).toMatch(/REDIS_MASTER_NAME/);
      expect(f.severity).toBe('error');
    }
    expect(code).toBe(1);
  });

  it('warns about a sentinel that does not answer while the others name the primary', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const { findings, code } = await doctor({ REDIS_SENTINELS: `${dead},${group.sentinels}` });
    const bad = failing(findings);
    expect(bad).toEqual([
      expect.objectContaining({
        check: `redis sentinel ${dead}`,
        severity: 'warning',
        detail: expect.stringMatching(/^does not answer/),
        fix: expect.stringMatching(/start Sentinel on .*REDIS_SENTINELS/),
      }),
    ]);
    expect(code).toBe(0);
  });

  it('fails when no sentinel answers: a wrong sentinel password, or a Redis port instead of a sentinel', async () => {
    const wrongPassword = await doctor({
      REDIS_SENTINELS: group.sentinels.split(',')[0] as string,
      REDIS_SENTINEL_PASSWORD: 'not-the-password',
    });
    expect(failing(wrongPassword.findings)).toEqual([
      expect.objectContaining({
        severity: 'error',
        detail: expect.stringMatching(/WRONGPASS|invalid password/),
        fix: expect.stringMatching(/REDIS_SENTINEL_PASSWORD/),
      }),
    ]);
    expect(wrongPassword.code).toBe(1);

    const notSentinel = await doctor({
      REDIS_SENTINELS: `127.0.0.1:${group.primaryPort()}`,
      REDIS_SENTINEL_PASSWORD: PASSWORD,
    });
    expect(failing(notSentinel.findings)).toEqual([
      expect.objectContaining({
        detail: expect.stringMatching(/^answers but is not a sentinel/),
        fix: expect.stringMatching(/sentinels' ports/),
        severity: 'error',
      }),
    ]);
  });

  it('reports the primary the sentinels name while it is down, then the promoted one', async () => {
    await group.killPrimary();
    const old = group.primaryPort();
    const during = await doctor({ REDIS_SENTINELS: group.sentinels });
    expect(failing(during.findings)).toEqual([
      expect.objectContaining({
        check: 'redis master',
        severity: 'error',
        detail: expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:${old} does not answer: .*ECONNREFUSED`)),
        fix: expect.stringMatching(/start the primary at .*REDIS_PASSWORD/),
      }),
    ]);
    expect(during.code).toBe(1);

    const promoted = await group.waitForPromotion(30_000);
    const after = await doctor({ REDIS_SENTINELS: group.sentinels });
    expect(after.report).toContain(`redis master: 127.0.0.1:${promoted} answers`);
    expect(failing(after.findings).filter((f) => f.severity === 'error')).toEqual([]);
  }, 60_000);
});
