import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** The URL on another address it listens on (`alsoBind`). */
  urlOn(address: string): string;
  /** SHUTDOWN (which fsyncs the AOF) and start again on the same port and directory. */
  restart(): Promise<void>;
  /** SHUTDOWN, leaving the data for `up()`: Redis is away until then. */
  down(): Promise<void>;
  /** Starts again on the same port and directory after `down()`. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** The settings the README asks of a production Redis: AOF fsync'd on every write, no eviction. */
export const DURABLE_REDIS_ARGS = [
  '--save',
  '',
  '--appendonly',
  'yes',
  '--appendfsync',
  'always',
  '--maxmemory-policy',
  'noeviction',
] as const;

/**
 * A private redis-server on a free port, with AOF fsync'd on every write as the README
 * recommends, so tests never touch (or depend on) the machine's own Redis.
 */
export async function startRedis(
  options: {
    alsoBind?: string;
    /** Requires this password (`--requirepass`); `url` carries it, and the helper's own clients use it. */
    password?: string;
    /** More redis-server arguments, after the defaults. */
    args?: readonly string[];
  } = {},
): Promise<TestRedis> {
  const port = await freePort();
  const password = options.password;
  const dir = mkdtempSync(join(tmpdir(), 'agent-redis-'));
  let child: ChildProcess | undefined;

  const launch = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        options.alsoBind ? `127.0.0.1 ${options.alsoBind}` : '127.0.0.1',
        // Clients in a network namespace come from a non-loopback address.
        ...(options.alsoBind ? ['--protected-mode', 'no'] : []),
        '--dir',
        dir,
        ...DURABLE_REDIS_ARGS,
        ...(password !== undefined ? ['--requirepass', password] : []),
        ...(options.args ?? []),
      ],
      { stdio: 'ignore' },
    );
    await waitForPing(port, password);
  };

  const shutdown = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    const client = oneShotClient(port, password);
    await client
      .connect()
      .then(() => client.shutdown('SAVE').catch(() => {}))
      .catch(() => child?.kill('SIGTERM'));
    client.disconnect();
    await exited;
  };

  await launch();
  const auth = password !== undefined ? `:${encodeURIComponent(password)}@` : '';
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    urlOn: (address) => `redis://${auth}${address}:${port}`,
    dir,
    async restart() {
      await shutdown();
      await launch();
    },
    down: shutdown,
    up: launch,
    async stop() {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPing(port: number, password?: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const client = oneShotClient(port, password);
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch {
      client.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`redis-server on port ${port} did not answer within 10 s`);
}

/** A client that connects once, on `connect()`, and never retries: for probing and SHUTDOWN. */
function oneShotClient(port: number, password: string | undefined): Redis {
  const client = new Redis({
    port,
    ...(password !== undefined ? { password } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  return client;
}
