import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';
import { DURABLE_REDIS_ARGS } from './redis-server.js';

export interface SentinelGroupOptions {
  /** `down-after-milliseconds`: how long the primary must be silent before a failover. Default 1000. */
  downAfterMs?: number;
  /** Default "mymaster". */
  masterName?: string;
  /** `requirepass` (and `masterauth`) of the primary and replica, and the sentinels' `auth-pass`. */
  password?: string;
  /** `requirepass` of the sentinels themselves. */
  sentinelPassword?: string;
}

export interface SentinelGroup {
  masterName: string;
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3", as REDIS_SENTINELS takes it. */
  sentinels: string;
  dir: string;
  /** The port of the node that is primary now (after `waitForPromotion`, the promoted one). */
  primaryPort(): number;
  /** SIGKILLs the primary: no shutdown, no final AOF write, like a machine dying. */
  killPrimary(): Promise<void>;
  /** Resolves with the new primary's port once most sentinels name it and it answers ROLE as master. */
  waitForPromotion(timeoutMs?: number): Promise<number>;
  /** A client on the current primary (the caller disconnects it). */
  primaryClient(): Redis;
  /** Kills every process still running and removes the directory. */
  stop(): Promise<void>;
}

/** Every process any group started, so they die with the test process even when a test fails. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * A primary (AOF fsync'd on every write, noeviction, as the README recommends), one replica and
 * three sentinels (quorum 2), each on a free port in one temporary directory. Resolves once the
 * replica is in sync and every sentinel knows the primary, the replica and the two other sentinels.
 */
export async function startSentinelGroup(options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  const masterName = options.masterName ?? 'mymaster';
  const downAfterMs = options.downAfterMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), 'agent-sentinel-'));
  const [primary, replica, ...sentinelPorts] = (await distinctFreePorts(5)) as [number, number, ...number[]];
  const nodes = new Map<number, ChildProcess>();
  let currentPrimary = primary;

  const nodeClient = (port: number) => probe(port, options.password);
  const sentinelClient = (port: number) => probe(port, options.sentinelPassword);

  const stop = async () => {
    await Promise.all([...nodes.values()].map(kill));
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const [port, role] of [
      [primary, 'primary'],
      [replica, 'replica'],
    ] as const) {
      const nodeDir = join(dir, `${role}-${port}`);
      mkdirSync(nodeDir);
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        nodeDir,
        '--logfile',
        join(nodeDir, 'redis.log'),
        ...DURABLE_REDIS_ARGS,
        ...(options.password ? ['--requirepass', options.password, '--masterauth', options.password] : []),
        ...(role === 'replica' ? ['--replicaof', '127.0.0.1', String(primary)] : []),
      ];
      nodes.set(port, launch('redis-server', args));
    }
    await waitFor(`the replica on ${replica} to sync`, 15_000, async () => {
      const info = await withClient(nodeClient(primary), (c) => c.info('replication'));
      return new RegExp(`slave\\d+:ip=127\\.0\\.0\\.1,port=${replica},state=online`).test(info);
    });

    for (const port of sentinelPorts) {
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `logfile ${join(dir, `sentinel-${port}.log`)}`,
          ...(options.sentinelPassword ? [`requirepass ${options.sentinelPassword}`] : []),
          'sentinel resolve-hostnames no',
          `sentinel monitor ${masterName} 127.0.0.1 ${primary} 2`,
          ...(options.password ? [`sentinel auth-pass ${masterName} ${options.password}`] : []),
          `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
          `sentinel failover-timeout ${masterName} 3000`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      nodes.set(port, launch('redis-server', [file, '--sentinel']));
    }
    // Sentinels find the replica from the primary's INFO, and each other from hello messages
    // published on the primary every 2 s.
    await waitFor('every sentinel to know the primary, the replica and each other', 20_000, async () => {
      for (const port of sentinelPorts) {
        const known = await withClient(sentinelClient(port), async (c) => ({
          master: (await c.call('SENTINEL', 'get-master-addr-by-name', masterName)) as string[] | null,
          sentinels: (await c.call('SENTINEL', 'sentinels', masterName)) as unknown[],
          replicas: (await c.call('SENTINEL', 'replicas', masterName)) as string[][],
        }));
        const replicaOk = known.replicas.some((fields) => {
          const entry = fieldsOf(fields);
          return entry.port === String(replica) && !/s_down|disconnected/.test(entry.flags ?? '');
        });
        if (known.master?.[1] !== String(primary) || known.sentinels.length !== 2 || !replicaOk) return false;
      }
      return true;
    });
  } catch (error) {
    const logs = sentinelPorts
      .map((port) => `--- sentinel ${port}\n${tail(join(dir, `sentinel-${port}.log`))}`)
      .join('\n');
    await stop();
    throw new Error(`${(error as Error).message}\n${logs}`);
  }

  return {
    masterName,
    sentinels: sentinelPorts.map((port) => `127.0.0.1:${port}`).join(','),
    dir,
    primaryPort: () => currentPrimary,
    async killPrimary() {
      const child = nodes.get(currentPrimary);
      if (child) await kill(child);
    },
    async waitForPromotion(timeoutMs = 30_000) {
      const old = currentPrimary;
      let promoted = 0;
      await waitFor(`a sentinel majority to promote a new primary (old: ${old})`, timeoutMs, async () => {
        const named = await Promise.all(
          sentinelPorts.map((port) =>
            withClient(sentinelClient(port), (c) =>
              c.call('SENTINEL', 'get-master-addr-by-name', masterName),
            ).then(
              (reply) => Number((reply as string[] | null)?.[1]),
              () => Number.NaN,
            ),
          ),
        );
        const votes = named.filter((port) => port !== old && !Number.isNaN(port));
        const candidate = votes[0];
        if (candidate === undefined || votes.filter((p) => p === candidate).length < 2) return false;
        const role = await withClient(nodeClient(candidate), (c) => c.call('ROLE')).catch(() => undefined);
        if ((role as unknown[] | undefined)?.[0] !== 'master') return false;
        promoted = candidate;
        return true;
      });
      currentPrimary = promoted;
      return promoted;
    },
    primaryClient: () =>
      new Redis({ port: currentPrimary, ...(options.password ? { password: options.password } : {}) }),
    stop,
  };
}

function launch(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore' });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** Never the well-known 6379/26379, so the machine's own Redis is never touched. */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) {
    const port = await freePort();
    if (port !== 6379 && port !== 26379) ports.add(port);
  }
  return [...ports];
}

function probe(port: number, password: string | undefined): Redis {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    ...(password ? { password } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  return client;
}

async function withClient<T>(client: Redis, use: (client: Redis) => Promise<T>): Promise<T> {
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** `SENTINEL replicas` answers each replica as a flat [name, value, name, value, ...] list. */
function fieldsOf(flat: string[]): Record<string, string> {
  const entry: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) entry[flat[i] as string] = flat[i + 1] as string;
  return entry;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await sleep(100);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`,
  );
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}
