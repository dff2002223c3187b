import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: {
    model: string;
    stream?: boolean;
    messages: { role: string; content: string }[];
  };
}

export interface FakeOpenAiOptions {
  /** The reply for a request; default echoes the last user message. */
  reply?: (body: RecordedRequest['body']) => string;
  /** Milliseconds before answering, to keep turns in flight. */
  delayMs?: number;
  /** Keep every request (off for benchmarks). Default true. */
  record?: boolean;
  /** Listen on this port instead of a free one. */
  port?: number;
}

export interface FakeOpenAi {
  url: string;
  /** baseURL for the openai SDK (ends in /v1). */
  baseURL: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export const echoReply = (body: RecordedRequest['body']): string =>
  `echo: ${[...body.messages].reverse().find((m) => m.role === 'user')?.content ?? ''}`;

/**
 * A local server speaking OpenAI's chat-completions wire format, plain JSON and SSE streams, so
 * the real `openai` SDK runs unmodified against it.
 */
export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const requests: RecordedRequest[] = [];
  const reply = options.reply ?? echoReply;
  const record = options.record ?? true;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] as string;
      if (req.method === 'GET' && path === '/v1/models') {
        return json(res, 200, {
          object: 'list',
          data: [{ id: 'fake-model', object: 'model', owned_by: 'test' }],
        });
      }
      if (req.method !== 'POST' || path !== '/v1/chat/completions') {
        return json(res, 404, { error: { message: 'not found', type: 'invalid_request_error' } });
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RecordedRequest['body'];
      if (record) requests.push({ path, headers: req.headers, body });
      const answer = () =>
        body.stream ? streamAnswer(res, body, reply(body)) : plainAnswer(res, body, reply(body));
      if (options.delayMs) setTimeout(answer, options.delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseURL: `${url}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function usage(body: RecordedRequest['body'], text: string) {
  const prompt = body.messages.reduce((n, m) => n + Math.ceil(m.content.length / 4), 0);
  const completion = Math.ceil(text.length / 4);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function plainAnswer(res: ServerResponse, body: RecordedRequest['body'], text: string): void {
  json(res, 200, {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: usage(body, text),
  });
}

function streamAnswer(res: ServerResponse, body: RecordedRequest['body'], text: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const base = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
  };
  const pieces = text.match(/.{1,8}/gs) ?? [''];
  res.write(
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })}\n\n`,
  );
  for (const piece of pieces) {
    res.write(
      `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`,
    );
  }
  res.write(
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
  );
  res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: usage(body, text) })}\n\n`);
  res.end('data: [DONE]\n\n');
}
