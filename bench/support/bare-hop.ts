/** Starts the benches' reference hop (bench/bare-hop-process.ts) in its own process. */
import { join } from 'node:path';
import type { BareHopReady } from '../bare-hop-process.js';
import { type Child, spawnNode, untilReady } from './processes.js';

/** The bare hop in front of the upstream at `upstreamBaseURL`; resolves once it listens. */
export async function startBareHop(upstreamBaseURL: string): Promise<{ handle: Child; url: string }> {
  const handle = spawnNode(
    'bare hop',
    [...process.execArgv, join(import.meta.dirname, '..', 'bare-hop-process.ts'), upstreamBaseURL],
    { PATH: process.env.PATH ?? '' },
  );
  const { port } = await untilReady(
    handle,
    15_000,
    (m): m is BareHopReady => typeof m === 'object' && m !== null && 'port' in m,
  );
  return { handle, url: `http://127.0.0.1:${port}` };
}
