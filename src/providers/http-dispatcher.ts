import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { BufferedResponse } from './buffered-response.js';

type FetchInput = Parameters<typeof globalThis.fetch>[0];
type FetchInit = Parameters<typeof globalThis.fetch>[1];

/**
 * One keep-alive connection pool for all SDK calls, behind a `fetch` the SDKs accept.
 *
 * Two costs are avoided. The SDKs' default fetch opens and closes connections far more often,
 * which costs about two thirds of the throughput on a busy agent. And WHATWG fetch itself (body
 * streams, abort plumbing) costs about as much CPU per call as the rest of an agent turn, so calls
 * with a plain body go through undici's `request`: answers that are not streams (small, bounded
 * JSON) are read whole into a `BufferedResponse`, server-sent event streams stay streams in a
 * standard `Response`. Anything else (form data, streamed uploads: no chat call sends them) takes
 * Node's own fetch, whose body types are the ones the SDKs build.
 */
export function createProviderFetch(): { fetch: typeof globalThis.fetch; close: () => Promise<void> } {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256, pipelining: 1 });

  const fetch = async (input: FetchInput, init?: FetchInit): Promise<Response> => {
    const body = init?.body;
    const plainBody =
      body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    if (!plainBody || (typeof input !== 'string' && !(input instanceof URL)))
      return globalThis.fetch(input, init);

    const url = String(input);
    const response = await request(url, {
      dispatcher,
      method: (init?.method ?? 'GET') as 'GET',
      headers: plainHeaders(init?.headers),
      body: body ?? null,
      signal: init?.signal ?? null,
    });
    const status = response.statusCode;
    const contentType = response.headers['content-type'];
    const isStream = typeof contentType === 'string' && contentType.startsWith('text/event-stream');
    if (!isStream) {
      const bytes = new Uint8Array(await response.body.arrayBuffer());
      return new BufferedResponse(status, response.headers, bytes, url) as unknown as Response;
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      else if (value !== undefined) headers.set(name, value);
    }
    return new Response(Readable.toWeb(response.body) as ReadableStream<Uint8Array>, { status, headers });
  };

  return { fetch: fetch as typeof globalThis.fetch, close: () => dispatcher.close() };
}

function plainHeaders(headers: NonNullable<FetchInit>['headers']): Record<string, string> {
  if (headers === undefined) return {};
  if (headers instanceof Headers) return Object.fromEntries(headers.entries());
  if (Array.isArray(headers)) return Object.fromEntries(headers);
  return headers as Record<string, string>;
}
