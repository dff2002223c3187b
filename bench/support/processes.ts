/**
 * The benches' child processes and scratch directories, and the frame a bench runs in: whatever
 * happens (an error, a signal, a stuck run), its children are stopped and its directories removed.
 * Also the child side: a fake's process never outlives the bench.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Child {
  name: string;
  child: ChildProcess;
  /** Its stdout and stderr lines. */
  output: string[];
  exited: Promise<void>;
}

interface Stoppable {
  stop(): Promise<void>;
}

const children = new Set<Child>();
const tempDirs = new Set<string>();
const resources = new Set<Stoppable>();

/** Has cleanup() stop the child while it runs. */
export function track(handle: Child): Child {
  children.add(handle);
  void handle.exited.then(() => children.delete(handle));
  return handle;
}

/** The children still running. */
export function runningChildren(): Child[] {
  return [...children];
}

/** Tracks a child started elsewhere (startAgentProcess), so cleanup() stops it too. */
export function adopt(
  name: string,
  started: { child: ChildProcess; output: string[]; exited: Promise<unknown> },
): Child {
  return track({ name, child: started.child, output: started.output, exited: started.exited.then(() => {}) });
}

/**
 * Starts `node ...args` with an IPC channel and tracks it. Its non-blank output lines are kept,
 * the last `keepLines` of them (all of them with Infinity).
 */
export function spawnNode(name: string, args: string[], env: NodeJS.ProcessEnv, keepLines = 200): Child {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const output: string[] = [];
  const add = (lines: string[]) => {
    for (const line of lines) if (line.trim()) output.push(line);
    if (output.length > keepLines) output.splice(0, output.length - keepLines);
  };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      add(lines);
    });
    stream?.on('end', () => add([partial]));
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return track({ name, child, output, exited });
}

/**
 * Resolves with the child's first IPC message that `isReady`; rejects, with its output, if it
 * exits first or is not ready within `timeoutMs` (then it is killed).
 */
export function untilReady<T>(
  handle: Child,
  timeoutMs: number,
  isReady: (message: unknown) => message is T,
): Promise<T> {
  const { name, child, output } = handle;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${output.join('\n')}`));
    }, timeoutMs);
    const onMessage = (message: unknown) => {
      if (!isReady(message)) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    void handle.exited.then(() => {
      clearTimeout(timer);
      reject(
        new Error(
          `${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output.join('\n')}`,
        ),
      );
    });
  });
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stopChild(handle: Child, graceMs = 10_000): Promise<void> {
  if (handle.child.exitCode !== null || handle.child.signalCode !== null) return;
  handle.child.kill('SIGTERM');
  const timer = setTimeout(() => handle.child.kill('SIGKILL'), graceMs);
  await handle.exited;
  clearTimeout(timer);
}

/** Has cleanup() stop `resource` (a private redis-server) after the children; its errors are ignored. */
export function stopAtCleanup<T extends Stoppable>(resource: T): T {
  resources.add(resource);
  return resource;
}

/** Stops a resource given to stopAtCleanup() now instead. */
export async function stopNow(resource: Stoppable): Promise<void> {
  resources.delete(resource);
  await resource.stop().catch(() => {});
}

/**
 * A fresh directory under `parent`, removed by cleanup(), holding `config` as the agent's
 * AGENT_CONFIG file; `dataDir` is for its DATA_DIR.
 */
export function agentDir(
  parent: string,
  prefix: string,
  config: unknown,
): { configPath: string; dataDir: string } {
  const dir = mkdtempSync(join(parent, prefix));
  tempDirs.add(dir);
  const configPath = join(dir, 'agent.config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { configPath, dataDir: join(dir, 'data') };
}

/** Stops every child still running and every resource, and removes the scratch directories. */
export async function cleanup(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
  for (const resource of [...resources]) await stopNow(resource);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/**
 * Runs the bench's `main`, then cleanup(). Everything is bounded: a stuck run ends the bench (and
 * its children) after `budgetMs` instead of hanging, and SIGINT or SIGTERM cleans up too.
 */
export async function runBench(main: () => Promise<void>, budgetMs: number): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${Math.round(budgetMs / 1000)} s; giving up`);
    void cleanup().finally(() => process.exit(2));
  }, budgetMs);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  }
  try {
    await main();
  } catch (error) {
    console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}

/** In a fake's child process: runs `close` and exits when the bench goes away or signals it. */
export function exitWithParent(close: () => Promise<unknown>): void {
  const exit = () => void close().finally(() => process.exit(0));
  // The parent going away (even by SIGKILL) closes the IPC channel: never outlive it.
  process.on('disconnect', exit);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
}
