import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProviderFetch } from '../../../src/providers/http-dispatcher.js';

/** The fetch every SDK call goes through, against a plain local HTTP server. */
describe('createProviderFetch', () => {
  let server: Server;
  let base: string;
  let releaseStream: (() => void) | undefined;
  const seen: { method?: string; headers?: Record<string, unknown>; body?: string }[] = [];
  const { fetch, close } = createProviderFetch();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', headers: req.headers, body });
        if (req.url === '/json') {
          res.setHeader('set-cookie', ['a=1', 'b=2']);
          res.setHeader('retry-after', '7');
          res.writeHead(429, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'slow down' } }));
        } else if (req.url === '/empty') {
          res.writeHead(204).end();
        } else if (req.url === '/sse') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: first\n\n');
          releaseStream = () => res.end('data: last\n\n');
        } else if (req.url === '/hang') {
          // never answers
        } else {
          res.writeHead(404).end();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('sends method, headers and body, and returns status, every header and the JSON body', async () => {
    const response = await fetch(`${base}/json`, {
      method: 'POST',
      headers: new Headers({ 'content-type': 'application/json', 'x-test': 'yes' }),
      body: '{"q":1}',
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({ error: { message: 'slow down' } });
    const request = seen.at(-1);
    expect(request).toMatchObject({ method: 'POST', body: '{"q":1}' });
    expect(request?.headers?.['x-test']).toBe('yes');
  });

  it('reads an answer once, as fetch does, and clone() gives a second reader before that', async () => {
    const response = await fetch(`${base}/json`, { method: 'POST', body: '{}' });
    expect(response.ok).toBe(false);
    expect(response.url).toBe(`${base}/json`);
    expect(response.bodyUsed).toBe(false);
    const copy = response.clone();
    expect(await response.text()).toBe('{"error":{"message":"slow down"}}');
    expect(response.bodyUsed).toBe(true);
    await expect(response.text()).rejects.toThrow(TypeError);
    expect(() => response.clone()).toThrow(TypeError);
    expect(await copy.json()).toEqual({ error: { message: 'slow down' } });
    const names = [...response.headers.entries()].map(([name]) => name);
    expect(names).toEqual([...names].sort());
    expect(response.headers.get('Set-Cookie')).toBe('a=1, b=2');
    expect(response.headers.has('content-type')).toBe(true);
    expect(response.headers.get('x-missing')).toBeNull();
  });

  it('answers 204 with no body', async () => {
    const response = await fetch(`${base}/empty`, { method: 'DELETE' });
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
  });

  it('keeps an event stream a stream: the first event arrives before the server ends it', async () => {
    const response = await fetch(`${base}/sse`, { method: 'POST', body: '{}' });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('data: first\n\n');
    releaseStream?.();
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      rest += new TextDecoder().decode(chunk.value);
    }
    expect(rest).toBe('data: last\n\n');
  });

  it('gives up when its signal aborts', async () => {
    const started = Date.now();
    await expect(fetch(`${base}/hang`, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('sends other bodies (form data) through the built-in fetch', async () => {
    const form = new FormData();
    form.set('field', 'value');
    const response = await fetch(`${base}/missing`, { method: 'POST', body: form });
    expect(response.status).toBe(404);
    expect(seen.at(-1)?.body).toContain('name="field"');
  });
});
