import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const MAIN_JS = resolve(import.meta.dirname, '../../dist/main.js');

export interface AgentProcess {
  child: ChildProcess;
  url: string;
  /** Every stdout and stderr line so far. */
  output: string[];
  exited: Promise<number | null>;
}

/**
 * Starts the built agent (`dist/main.js`) as a real process and resolves once it logs that it is
 * listening. `HTTP_PORT=0` lets the kernel pick the port; the URL comes from that log line.
 */
export function startAgentProcess(env: Record<string, string>, timeoutMs = 15_000): Promise<AgentProcess> {
  const child = spawn(process.execPath, [MAIN_JS, 'start'], {
    env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', LOCAL_LLM_PROBE: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent did not start within ${timeoutMs} ms:\n${output.join('\n')}`));
    }, timeoutMs);
    const onLine = (line: string) => {
      output.push(line);
      if (line.includes('"agent listening"')) {
        clearTimeout(timer);
        const url = (JSON.parse(line) as { url: string }).url;
        resolvePromise({ child, url, output, exited });
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buffer = '';
      stream?.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        let newline = buffer.indexOf('\n');
        while (newline !== -1) {
          onLine(buffer.slice(0, newline));
          buffer = buffer.slice(newline + 1);
          newline = buffer.indexOf('\n');
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before listening:\n${output.join('\n')}`));
    });
  });
}
