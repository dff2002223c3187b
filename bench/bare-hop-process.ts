/**
 * The reference for bench/gateway-bench.ts and bench/http-bench.ts: the least a Node HTTP hop
 * through the `openai` SDK costs here. fastify takes POST /v1/chat/completions, sends the body on
 * to the upstream through the SDK (retries off, a shared keep-alive undici dispatcher) and answers
 * with what came back: no auth, limits, routing, breakers, budgets, memory or metrics. What the
 * agent adds over this is its own cost, measured in the same run.
 *
 * Started with an IPC channel and the upstream's base URL as its argument; sends `{ port }` once
 * listening, and exits when the parent goes away.
 */
import Fastify from 'fastify';
import OpenAI from 'openai';
import { Agent, fetch } from 'undici';
import { exitWithParent } from './support/processes.js';

export interface BareHopReady {
  port: number;
}

async function main(): Promise<void> {
  const baseURL = process.argv[2];
  if (!baseURL) throw new Error('usage: bare-hop-process.ts <upstream base URL>');
  const dispatcher = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
  const sharedFetch = (input: string | URL, init?: Record<string, unknown>) =>
    fetch(input, { ...init, dispatcher });
  const client = new OpenAI({
    baseURL,
    apiKey: 'bench-not-a-real-key',
    maxRetries: 0,
    fetch: sharedFetch as unknown as typeof globalThis.fetch,
  });
  const app = Fastify();
  app.post('/v1/chat/completions', async (request) =>
    client.chat.completions.create({
      ...(request.body as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming),
      stream: false,
    }),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  exitWithParent(() => Promise.allSettled([app.close(), dispatcher.close()]));
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the bare hop is not listening');
  process.send?.({ port: address.port } satisfies BareHopReady);
}

await main();
