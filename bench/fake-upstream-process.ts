/**
 * Two fake OpenAI-compatible upstreams, `primary` and `secondary`, in a process of their own, for
 * bench/gateway-bench.ts: the load generator, the agent and the upstreams then never share an
 * event loop.
 *
 * Started with an IPC channel (`fork`-style stdio). It first sends `UpstreamReady` with both
 * servers' URLs, then answers every `UpstreamCommand` with one `UpstreamReply` carrying the same
 * `id`: `setFault` sets (or clears) a fault on one upstream (see FakeFaultSetting in
 * test/fakes/fake-openai.ts); `counts` returns each upstream's cumulative request counts, split
 * into chat completions and everything else (the gateway's health probes, `GET /v1/models`).
 * It exits when the parent goes away.
 */
import { type FakeFaultSetting, type FakeOpenAi, startFakeOpenAi } from '../test/fakes/fake-openai.js';
import { exitWithParent } from './support/processes.js';

export type UpstreamName = 'primary' | 'secondary';

export interface UpstreamReady {
  type: 'ready';
  upstreams: Record<UpstreamName, { url: string; baseURL: string }>;
}

export type UpstreamCommand =
  | { id: number; cmd: 'setFault'; upstream: UpstreamName; fault: FakeFaultSetting | undefined }
  | { id: number; cmd: 'counts' };

export interface UpstreamCounts {
  /** Chat-completion requests received, faulted ones included. */
  chat: number;
  /** Every other request: the gateway's health probes (`GET /v1/models`). */
  probes: number;
}

export type UpstreamReply =
  | { id: number; ok: true; counts: Record<UpstreamName, UpstreamCounts> }
  | { id: number; ok: false; error: string };

async function main(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error('fake-upstream-process must be started with an IPC channel');
  const fakes: Record<UpstreamName, FakeOpenAi> = {
    primary: await startFakeOpenAi({ record: false }),
    secondary: await startFakeOpenAi({ record: false }),
  };
  exitWithParent(() => Promise.allSettled(Object.values(fakes).map((f) => f.close())));

  const counts = (): Record<UpstreamName, UpstreamCounts> => ({
    primary: { chat: fakes.primary.chatHits, probes: fakes.primary.hits - fakes.primary.chatHits },
    secondary: { chat: fakes.secondary.chatHits, probes: fakes.secondary.hits - fakes.secondary.chatHits },
  });
  process.on('message', (message: UpstreamCommand) => {
    let reply: UpstreamReply;
    try {
      if (message.cmd === 'setFault') fakes[message.upstream].setFault(message.fault);
      else if (message.cmd !== 'counts') throw new Error(`unknown command ${JSON.stringify(message)}`);
      reply = { id: message.id, ok: true, counts: counts() };
    } catch (error) {
      reply = { id: message.id, ok: false, error: String((error as Error).message ?? error) };
    }
    send(reply);
  });

  const ready: UpstreamReady = {
    type: 'ready',
    upstreams: {
      primary: { url: fakes.primary.url, baseURL: fakes.primary.baseURL },
      secondary: { url: fakes.secondary.url, baseURL: fakes.secondary.baseURL },
    },
  };
  send(ready);
}

await main();
