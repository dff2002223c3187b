import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from './free-port.js';

export const MAIN_JS = resolve(import.meta.dirname, '../../dist/main.js');

export interface AgentProcess {
  child: ChildProcess;
  url: string;
  /** Every stdout and stderr line so far. */
  output: string[];
  exited: Promise<number | null>;
}

/**
 * Starts the built agent (`dist/main.js`) as a real process and resolves once it sends 'ready'
 * over IPC, exactly as PM2's `wait_ready` sees it. Works at any log level.
 */
export async function startAgentProcess(
  env: Record<string, string>,
  timeoutMs = 15_000,
  /** Runs it inside a network namespace (`ip netns exec NAME`), listening on `host`. */
  netns?: { name: string; host: string },
  /** Another build's dist/main.js (the benches' before-and-after comparisons). */
  mainJs: string = MAIN_JS,
): Promise<AgentProcess> {
  const port = env.HTTP_PORT ?? String(await freePort());
  const [command, args] = netns
    ? ['ip', ['netns', 'exec', netns.name, process.execPath, mainJs, 'start']]
    : [process.execPath, [mainJs, 'start']];
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', LOCAL_LLM_PROBE: 'false', ...env, HTTP_PORT: port },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (const stream of [child.stdout, child.stderr]) {
    let buffer = '';
    stream?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      output.push(...lines);
    });
  }
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent did not start within ${timeoutMs} ms:\n${output.join('\n')}`));
    }, timeoutMs);
    child.on('message', (message) => {
      if (message !== 'ready') return;
      clearTimeout(timer);
      resolvePromise({ child, url: `http://${netns?.host ?? '127.0.0.1'}:${port}`, output, exited });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before it was ready:\n${output.join('\n')}`));
    });
  });
}
