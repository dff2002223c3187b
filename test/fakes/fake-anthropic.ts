import { createServer, type Server, type ServerResponse } from 'node:http';
import { type FakeFault, type FakeFaultSetting, FaultController, parseToolRequest } from './fake-openai.js';

export type { FakeFault, FakeFaultSetting } from './fake-openai.js';

type AnthropicBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content?: string | { type: string; text?: string }[] };

export interface AnthropicRequest {
  headers: Record<string, string | string[] | undefined>;
  /** The fault this request got, if any. */
  fault?: FakeFault['kind'];
  body: {
    model: string;
    max_tokens: number;
    system?: string;
    stream?: boolean;
    messages: { role: string; content: string | AnthropicBlock[] }[];
    tools?: { name: string; description?: string; input_schema: unknown }[];
  };
}

export interface FakeAnthropicOptions {
  /** The reply for a plain text turn; default `claude echo: <last user text>`. */
  reply?: (body: AnthropicRequest['body']) => string;
}

export interface FakeAnthropic {
  /** baseURL for @anthropic-ai/sdk (no /v1). */
  baseURL: string;
  /** Message requests received, faulted ones included. */
  requests: AnthropicRequest[];
  /** Every HTTP request received, faulted and probes included. */
  readonly hits: number;
  /** `POST /v1/messages` requests received, faulted ones included. */
  readonly chatHits: number;
  readonly fault: FakeFaultSetting | undefined;
  /** Sets (or with undefined, clears) the fault for the following requests. */
  setFault(fault: FakeFaultSetting | undefined): void;
  close(): Promise<void>;
}

function textOf(content: string | AnthropicBlock[] | undefined): string {
  if (typeof content === 'string') return content;
  return (content ?? []).map((b) => (b.type === 'text' ? b.text : '')).join('');
}

type Plan = { kind: 'text'; text: string } | { kind: 'tool'; id: string; name: string; input: string };

function plan(
  body: AnthropicRequest['body'],
  reply: (body: AnthropicRequest['body']) => string,
  n: number,
): Plan {
  const last = body.messages.at(-1);
  if (last?.role === 'user' && Array.isArray(last.content)) {
    const results = last.content.filter((b) => b.type === 'tool_result');
    if (results.length > 0)
      return {
        kind: 'text',
        text: results
          .map(
            (r) =>
              `tool said: ${typeof r.content === 'string' ? r.content : textOf(r.content as AnthropicBlock[])}`,
          )
          .join(' | '),
      };
  }
  if (body.tools && body.tools.length > 0 && last?.role === 'user') {
    const wanted = parseToolRequest(textOf(last.content));
    if (wanted) return { kind: 'tool', id: `toolu_fake_${n}`, name: wanted.name, input: wanted.arguments };
  }
  return { kind: 'text', text: reply(body) };
}

const defaultReply = (body: AnthropicRequest['body']): string =>
  `claude echo: ${textOf([...body.messages].reverse().find((m) => m.role === 'user')?.content)}`;

/**
 * A local server speaking Anthropic's Messages API, plain JSON and SSE, for the real SDK. It can
 * answer with `tool_use` blocks and injects faults (`setFault`), like the OpenAI fake.
 */
export async function startFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const requests: AnthropicRequest[] = [];
  const reply = options.reply ?? defaultReply;
  const faults = new FaultController();
  let hits = 0;
  let chatHits = 0;
  const server: Server = createServer((req, res) => {
    hits += 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method === 'GET' && path === '/v1/models') {
        const fault = faults.take(true);
        const answer = () =>
          json(res, 200, {
            data: [{ type: 'model', id: 'claude-fake', display_name: 'Fake' }],
            has_more: false,
          });
        if (fault) return applyPlainFault(res, fault, answer);
        return answer();
      }
      if (req.method !== 'POST' || path !== '/v1/messages') {
        return json(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'not found' } });
      }
      chatHits += 1;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AnthropicRequest['body'];
      const fault = faults.take(false);
      requests.push({ headers: req.headers, body, ...(fault ? { fault: fault.kind } : {}) });
      const p = plan(body, reply, chatHits);
      if (body.stream) return stream(res, body.model, p, fault);
      if (fault) return applyPlainFault(res, fault, () => plainAnswer(res, body.model, p));
      plainAnswer(res, body.model, p);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    baseURL: `http://127.0.0.1:${port}`,
    requests,
    get hits() {
      return hits;
    },
    get chatHits() {
      return chatHits;
    },
    get fault() {
      return faults.current;
    },
    setFault: (fault) => faults.set(fault),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

const apiError = (type: string, message: string) => ({ type: 'error', error: { type, message } });

const STATUS_ERRORS: Record<number, [string, string]> = {
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'model: claude-missing'],
  500: ['api_error', 'Internal server error'],
  502: ['api_error', 'Bad gateway'],
  503: ['api_error', 'Service unavailable'],
  504: ['api_error', 'Gateway timeout'],
  529: ['overloaded_error', 'Overloaded'],
};

/** Answers a fault that ends the request before any reply (or delays it, then calls `orElse`). */
function applyPlainFault(res: ServerResponse, fault: FakeFault, orElse: () => void) {
  switch (fault.kind) {
    case 'rate_limit': {
      const headers: Record<string, string> = {};
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
      return json(
        res,
        429,
        apiError('rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'),
        headers,
      );
    }
    case 'status': {
      if (fault.body !== undefined) {
        res.writeHead(fault.status, { 'content-type': 'application/json' });
        res.end(fault.body);
        return;
      }
      const [type, message] = STATUS_ERRORS[fault.status] ?? ['api_error', 'error'];
      return json(res, fault.status, apiError(type, message));
    }
    case 'context_too_long':
      return json(
        res,
        400,
        apiError('invalid_request_error', 'prompt is too long: 210417 tokens > 200000 maximum'),
      );
    case 'hang':
      return;
    case 'garbage': {
      const text = '<html><body>upstream said something {"content": [</body></html>';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    case 'cut_stream': {
      const text = JSON.stringify({ id: 'msg_fake', type: 'message', content: [] });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text) * 2,
      });
      res.write(text.slice(0, Math.floor(text.length / 2)), () => res.socket?.destroy());
      return;
    }
    case 'slow_first_token':
      setTimeout(orElse, fault.delayMs);
      return;
  }
}

function plainAnswer(res: ServerResponse, model: string, p: Plan): void {
  json(res, 200, {
    id: 'msg_fake',
    type: 'message',
    role: 'assistant',
    model,
    content:
      p.kind === 'tool'
        ? [{ type: 'tool_use', id: p.id, name: p.name, input: JSON.parse(p.input) }]
        : [{ type: 'text', text: p.text }],
    stop_reason: p.kind === 'tool' ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 5 },
  });
}

function stream(res: ServerResponse, model: string, p: Plan, fault: FakeFault | undefined) {
  if (fault && fault.kind !== 'cut_stream' && fault.kind !== 'slow_first_token' && fault.kind !== 'garbage') {
    return applyPlainFault(res, fault, () => undefined);
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  if (fault?.kind === 'garbage') {
    res.end('event: message_start\ndata: <html>upstream said something {"content": [</html>\n\n');
    return;
  }
  res.write(
    event('message_start', {
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
    }),
  );
  const content: string[] = [];
  if (p.kind === 'tool') {
    content.push(
      event('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'tool_use', id: p.id, name: p.name, input: {} },
      }),
    );
    for (const piece of p.input.match(/.{1,6}/gs) ?? [])
      content.push(
        event('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'input_json_delta', partial_json: piece },
        }),
      );
  } else {
    content.push(
      event('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'text', text: '' },
      }),
    );
    for (const piece of p.text.match(/.{1,6}/gs) ?? [])
      content.push(
        event('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text: piece },
        }),
      );
  }
  const tail = [
    event('content_block_stop', { type: 'content_block_stop', index: 0 }),
    event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: p.kind === 'tool' ? 'tool_use' : 'end_turn', stop_sequence: null },
      usage: { output_tokens: 5 },
    }),
    event('message_stop', { type: 'message_stop' }),
  ];
  const rest = () => {
    if (fault?.kind === 'cut_stream') {
      // The block start plus `afterChunks` deltas, then the socket goes.
      const sent = content.slice(0, fault.afterChunks + 1);
      res.write(sent.join(''), () => res.socket?.destroy());
      return;
    }
    for (const piece of content) res.write(piece);
    res.end(tail.join(''));
  };
  if (fault?.kind === 'slow_first_token') setTimeout(rest, fault.delayMs);
  else rest();
}
