import { Redis, type RedisOptions } from 'ioredis';
import type { AgentConfig } from '../config/schema.js';
import type { Finding } from '../doctor.js';
import { type HostPort, parseHostPort } from './host-port.js';
import { redisConnectionOptions } from './redis-connection.js';

type RedisConfig = AgentConfig['redis'];

/**
 * The configured Redis: one server (`url`), or a Sentinel group (`sentinels`): every sentinel,
 * the group's quorum, then the primary they name. Each finding says how to fix what it found.
 */
export async function checkRedisDependency(redis: Readonly<RedisConfig>): Promise<Finding[]> {
  if (redis.sentinels !== undefined) return checkSentinelGroup(redis, redis.sentinels);
  const options = redisConnectionOptions(redis);
  if (!options) return [];
  return checkPrimary(options, {
    check: 'redis',
    where: '',
    unreachableFix: 'start Redis or correct REDIS_URL',
  });
}

interface SentinelAnswer {
  /** The primary this sentinel names, when it answered and knows the master. */
  master?: HostPort;
  finding: Omit<Finding, 'severity'> & { severity?: Finding['severity'] };
  quorum?: { ok: boolean; detail: string };
}

async function checkSentinelGroup(
  redis: Readonly<RedisConfig>,
  sentinels: readonly string[],
): Promise<Finding[]> {
  const answers = await Promise.all(sentinels.map((text) => askSentinel(text, redis)));
  const masters = answers.flatMap((a) => (a.master ? [`${a.master.host}:${a.master.port}`] : []));
  // One sentinel down is a warning while another still names the primary: clients try the next.
  const anyKnows = masters.length > 0;
  const findings: Finding[] = answers.map(({ finding }) => ({
    ...finding,
    severity: finding.severity ?? (finding.ok ? 'info' : anyKnows ? 'warning' : 'error'),
  }));

  const quorum = answers.find((a) => a.quorum)?.quorum;
  if (quorum) {
    findings.push({
      check: `redis sentinel quorum "${redis.masterName}"`,
      ok: quorum.ok,
      severity: 'warning',
      detail: quorum.detail,
      ...(quorum.ok
        ? {}
        : {
            fix: 'start the missing sentinels (at least three, on separate machines), or lower the quorum in `sentinel monitor`',
          }),
    });
  }
  if (new Set(masters).size > 1) {
    findings.push({
      check: 'redis sentinels agree',
      ok: false,
      severity: 'warning',
      detail: `the sentinels name different primaries: ${[...new Set(masters)].join(', ')}`,
      fix: 'wait a few seconds for a failover to finish; if it persists, check every sentinel monitors the same primary',
    });
  }

  // During a failover the sentinels can briefly disagree: check the primary most of them name.
  const where = mostNamed(masters);
  if (where === undefined) return findings;
  const master = answers.find((a) => a.master && `${a.master.host}:${a.master.port}` === where)
    ?.master as HostPort;
  findings.push(
    ...(await checkPrimary(
      { host: master.host, port: master.port, ...(redis.password ? { password: redis.password } : {}) },
      {
        check: 'redis master',
        where,
        unreachableFix: `start the primary at ${where} (or wait for the sentinels to promote a replica), and check REDIS_PASSWORD`,
        expectMaster: true,
      },
    )),
  );
  return findings;
}

function mostNamed(addresses: readonly string[]): string | undefined {
  const votes = new Map<string, number>();
  for (const address of addresses) votes.set(address, (votes.get(address) ?? 0) + 1);
  return [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
}

async function askSentinel(text: string, redis: Readonly<RedisConfig>): Promise<SentinelAnswer> {
  const check = `redis sentinel ${text}`;
  const address = parseHostPort(text);
  if (!address) {
    return {
      finding: {
        check,
        ok: false,
        severity: 'error',
        detail: 'is not host:port',
        fix: 'set REDIS_SENTINELS to host:port pairs',
      },
    };
  }
  const { client, reason } = probeClient({
    ...address,
    ...(redis.sentinelPassword ? { password: redis.sentinelPassword } : {}),
  });
  try {
    await client.connect();
    let reply: unknown;
    try {
      reply = await client.call('SENTINEL', 'get-master-addr-by-name', redis.masterName);
    } catch (error) {
      return {
        finding: {
          check,
          ok: false,
          detail: `answers but is not a sentinel (${(error as Error).message})`,
          fix: "point REDIS_SENTINELS at the sentinels' ports (26379 by default), not at Redis itself",
        },
      };
    }
    if (!Array.isArray(reply) || reply.length < 2) {
      return {
        finding: {
          check,
          ok: false,
          detail: `answers but monitors no master named "${redis.masterName}"`,
          fix: "set REDIS_MASTER_NAME to the name in the sentinels' `sentinel monitor <name> ...` line (`SENTINEL MASTERS` lists them)",
        },
      };
    }
    const master = { host: String(reply[0]), port: Number(reply[1]) };
    const quorum = await client.call('SENTINEL', 'ckquorum', redis.masterName).then(
      (ok) => ({ ok: true, detail: String(ok) }),
      (error: Error) => ({ ok: false, detail: error.message }),
    );
    return {
      master,
      quorum,
      finding: {
        check,
        ok: true,
        detail: `answers; master "${redis.masterName}" is at ${master.host}:${master.port}`,
      },
    };
  } catch (error) {
    return {
      finding: {
        check,
        ok: false,
        detail: `does not answer: ${reason(error)}`,
        fix: `start Sentinel on ${text}, or correct REDIS_SENTINELS (and REDIS_SENTINEL_PASSWORD if the sentinels require one)`,
      },
    };
  } finally {
    client.disconnect();
  }
}

async function checkPrimary(
  options: RedisOptions,
  label: { check: string; where: string; unreachableFix: string; expectMaster?: boolean },
): Promise<Finding[]> {
  const { client: redis, reason } = probeClient(options);
  const at = label.where ? `${label.where} ` : '';
  try {
    await redis.connect();
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const role = await roleOf(redis);
    const findings: Finding[] = [];
    if (role !== undefined && role !== 'master') {
      findings.push({
        check: label.check,
        ok: false,
        severity: 'error',
        detail: `${at}answers, version ${version}, but is a ${role === 'slave' ? 'replica' : role}: it refuses writes`,
        fix: label.expectMaster
          ? 'wait a few seconds for the failover to finish (`SENTINEL failover-in-progress`), then run doctor again'
          : 'point REDIS_URL at the primary, or use REDIS_SENTINELS to follow failovers',
      });
    } else {
      findings.push({
        check: label.check,
        ok: true,
        severity: 'info',
        detail: `${at}answers, version ${version}${label.expectMaster && role ? `, role ${role}` : ''}`,
      });
    }
    findings.push(...(await persistenceFindings(redis)));
    return findings;
  } catch (error) {
    return [
      {
        check: label.check,
        ok: false,
        severity: 'error',
        detail: `${at}does not answer: ${reason(error)}`,
        fix: label.unreachableFix,
      },
    ];
  } finally {
    redis.disconnect();
  }
}

async function persistenceFindings(redis: Redis): Promise<Finding[]> {
  try {
    const [, appendonly] = (await redis.config('GET', 'appendonly')) as string[];
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
    return [
      {
        check: 'redis appendonly',
        ok: appendonly === 'yes',
        severity: 'warning',
        detail: `appendonly ${appendonly}`,
        ...(appendonly === 'yes'
          ? {}
          : { fix: 'set `appendonly yes` (and `appendfsync always` for no loss on a Redis crash)' }),
      },
      {
        check: 'redis maxmemory-policy',
        ok: policy === 'noeviction',
        severity: 'warning',
        detail: `maxmemory-policy ${policy}`,
        ...(policy === 'noeviction'
          ? {}
          : { fix: 'set `maxmemory-policy noeviction` so Redis never drops conversation keys' }),
      },
    ];
  } catch {
    return [
      {
        check: 'redis config',
        ok: true,
        severity: 'warning',
        detail: 'CONFIG GET is not allowed; check AOF and maxmemory-policy by hand',
      },
    ];
  }
}

/** "master", "slave" (Redis's word for a replica) or "sentinel"; undefined when ROLE is not allowed. */
async function roleOf(redis: Redis): Promise<string | undefined> {
  try {
    const reply = (await redis.call('ROLE')) as unknown[];
    return String(reply[0]);
  } catch {
    return undefined;
  }
}

/**
 * One attempt, no retries and no offline queue: doctor reports, it does not wait. `reason` prefers
 * the connection's own error (ECONNREFUSED, WRONGPASS) over ioredis's "Connection is closed.".
 */
function probeClient(options: RedisOptions): { client: Redis; reason(error: unknown): string } {
  let lastError: string | undefined;
  const client = new Redis({
    ...options,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 3000,
    retryStrategy: () => null,
    reconnectOnError: null,
  });
  client.on('error', (error: Error) => {
    lastError = error.message;
  });
  return { client, reason: (error) => lastError ?? (error as Error).message };
}
