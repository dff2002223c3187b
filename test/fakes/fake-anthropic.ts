import { createServer, type Server, type ServerResponse } from 'node:http';

export interface AnthropicRequest {
  headers: Record<string, string | string[] | undefined>;
  body: {
    model: string;
    max_tokens: number;
    system?: string;
    stream?: boolean;
    messages: { role: string; content: string }[];
  };
}

export interface FakeAnthropic {
  /** baseURL for @anthropic-ai/sdk (no /v1). */
  baseURL: string;
  requests: AnthropicRequest[];
  close(): Promise<void>;
}

/** A local server speaking Anthropic's Messages API, plain JSON and SSE, for the real SDK. */
export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const requests: AnthropicRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method === 'GET' && path === '/v1/models') {
        return json(res, 200, {
          data: [{ type: 'model', id: 'claude-fake', display_name: 'Fake' }],
          has_more: false,
        });
      }
      if (req.method !== 'POST' || path !== '/v1/messages') {
        return json(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'not found' } });
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AnthropicRequest['body'];
      requests.push({ headers: req.headers, body });
      const last = [...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
      const text = `claude echo: ${last}`;
      if (body.stream) return stream(res, body.model, text);
      json(res, 200, {
        id: 'msg_fake',
        type: 'message',
        role: 'assistant',
        model: body.model,
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: 10, output_tokens: 5 },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    baseURL: `http://127.0.0.1:${port}`,
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

function stream(res: ServerResponse, model: string, text: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const send = (event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  send('message_start', {
    type: 'message_start',
    message: {
      id: 'msg_fake',
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 10, output_tokens: 1 },
    },
  });
  send('content_block_start', {
    type: 'content_block_start',
    index: 0,
    content_block: { type: 'text', text: '' },
  });
  for (const piece of text.match(/.{1,6}/gs) ?? []) {
    send('content_block_delta', {
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: piece },
    });
  }
  send('content_block_stop', { type: 'content_block_stop', index: 0 });
  send('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: 5 },
  });
  send('message_stop', { type: 'message_stop' });
  res.end();
}
