import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * A failure the fakes inject, for the provider and gateway tests. Every kind works for both
 * plain and streamed requests unless noted.
 */
export type FakeFault =
  /** 429; headers `retry-after` (seconds), `retry-after-ms`, `x-ratelimit-reset-requests`/`-tokens` as given. */
  | {
      kind: 'rate_limit';
      retryAfterSeconds?: number;
      retryAfterMs?: number;
      /** Value of `x-ratelimit-reset-requests` (e.g. `1s`, `6m0s`, `20ms`); sets `x-ratelimit-remaining-requests: 0`. */
      resetHeader?: string;
      /** Value of `x-ratelimit-reset-tokens`; sets `x-ratelimit-remaining-tokens: 0`. */
      resetTokensHeader?: string;
    }
  /** That status with the provider's usual error body for it, or `body` verbatim. */
  | { kind: 'status'; status: 500 | 502 | 503 | 504 | 529 | 401 | 403 | 404; body?: string }
  /** Never answers (the socket stays open until the client gives up or the fake closes). */
  | { kind: 'hang' }
  /** 200 whose body is not the wire format (invalid JSON; for streams, an SSE event with invalid JSON). */
  | { kind: 'garbage' }
  /** Sends `afterChunks` content chunks, then destroys the socket (a plain reply: half its body). */
  | { kind: 'cut_stream'; afterChunks: number }
  /** Streams: headers at once, the first token after `delayMs`. Plain replies: the whole reply after `delayMs`. */
  | { kind: 'slow_first_token'; delayMs: number }
  /** 400 with the provider's "prompt too long" error (OpenAI: code `context_length_exceeded`). */
  | { kind: 'context_too_long' };

export type FakeFaultSetting = FakeFault & {
  /** Clears itself after this many faulted requests; default: until changed. */
  times?: number;
  /** Also fault `GET /models` (probes). Default false: only chat requests are faulted. */
  probes?: boolean;
};

/** Holds the current fault; `take` returns it for one request and counts `times` down. */
export class FaultController {
  private setting: FakeFaultSetting | undefined;
  private left = Number.POSITIVE_INFINITY;

  set(fault: FakeFaultSetting | undefined): void {
    this.setting = fault;
    this.left = fault?.times ?? Number.POSITIVE_INFINITY;
  }

  get current(): FakeFaultSetting | undefined {
    return this.setting;
  }

  take(isProbe: boolean): FakeFault | undefined {
    const setting = this.setting;
    if (!setting || (isProbe && !setting.probes)) return undefined;
    this.left -= 1;
    if (this.left <= 0) this.setting = undefined;
    return setting;
  }
}

export interface FakeToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface RecordedMessage {
  role: string;
  content: string | null | { type: string; text?: string }[];
  tool_calls?: FakeToolCall[];
  tool_call_id?: string;
}

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  /** Azure requests only: the deployment in the path and the `api-version` query. */
  deployment?: string;
  apiVersion?: string;
  /** The fault this request got, if any. */
  fault?: FakeFault['kind'];
  body: {
    model: string;
    stream?: boolean;
    messages: RecordedMessage[];
    tools?: { type: string; function: { name: string; description?: string; parameters?: unknown } }[];
    max_tokens?: number;
  };
}

export interface FakeOpenAiOptions {
  /** The address to listen on. Default 127.0.0.1. */
  host?: string;
  /** The reply for a request; default echoes the last user message. */
  reply?: (body: RecordedRequest['body']) => string;
  /**
   * A model of its own for requests that offer tools: the tool call it makes now, or undefined to
   * answer as usual. Consulted on every such request, after tool results too.
   */
  toolPlan?: (body: RecordedRequest['body']) => { name: string; arguments: string } | undefined;
  /** Milliseconds before answering, to keep turns in flight. */
  delayMs?: number;
  /** Keep every request (off for benchmarks). Default true. */
  record?: boolean;
  /** Listen on this port instead of a free one. */
  port?: number;
  /** The `api-key` Azure requests must carry; default: any non-empty key. Wrong or missing: 401. */
  azureKey?: string;
  /** Azure deployments that exist; default: any. Another one: 404 DeploymentNotFound. */
  azureDeployments?: string[];
  /** Accepted `api-version` values; default: any non-empty one. Missing or other: 400. */
  azureApiVersions?: string[];
}

export interface FakeOpenAi {
  url: string;
  /** baseURL for the openai SDK (ends in /v1). */
  baseURL: string;
  /** `endpoint` for the SDK's AzureOpenAI client (same server; serves /openai/deployments/...). */
  azureEndpoint: string;
  /** Chat requests received (faulted ones included), unless `record: false`. */
  requests: RecordedRequest[];
  /** Every HTTP request received, faulted and probes included. */
  readonly hits: number;
  /** Chat-completion requests received (OpenAI and Azure paths), faulted ones included. */
  readonly chatHits: number;
  /** The fault in force, or undefined. */
  readonly fault: FakeFaultSetting | undefined;
  /** Sets (or with undefined, clears) the fault for the following requests. */
  setFault(fault: FakeFaultSetting | undefined): void;
  close(): Promise<void>;
}

export function textOf(content: RecordedMessage['content']): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => part.text ?? '').join('');
  return '';
}

export const echoReply = (body: RecordedRequest['body']): string =>
  `echo: ${textOf([...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '')}`;

/** `use tool <name> <json-args>` in the last user message, when the request offers tools. */
export function parseToolRequest(text: string): { name: string; arguments: string } | undefined {
  const match = /use tool (\S+)\s*([\s\S]*)$/.exec(text);
  if (!match) return undefined;
  return { name: match[1] as string, arguments: (match[2] ?? '').trim() || '{}' };
}

type Plan = { kind: 'text'; text: string } | { kind: 'tool'; call: FakeToolCall };

function plan(
  body: RecordedRequest['body'],
  reply: (body: RecordedRequest['body']) => string,
  n: number,
  toolPlan?: FakeOpenAiOptions['toolPlan'],
): Plan {
  const planned = body.tools && body.tools.length > 0 ? toolPlan?.(body) : undefined;
  if (planned) return { kind: 'tool', call: { id: `call_fake_${n}`, type: 'function', function: planned } };
  const trailing: RecordedMessage[] = [];
  for (let i = body.messages.length - 1; i >= 0 && body.messages[i]?.role === 'tool'; i--)
    trailing.unshift(body.messages[i] as RecordedMessage);
  if (trailing.length > 0)
    return { kind: 'text', text: trailing.map((m) => `tool said: ${textOf(m.content)}`).join(' | ') };
  const last = body.messages.at(-1);
  if (body.tools && body.tools.length > 0 && last?.role === 'user') {
    const wanted = parseToolRequest(textOf(last.content));
    if (wanted)
      return {
        kind: 'tool',
        call: {
          id: `call_fake_${n}`,
          type: 'function',
          function: { name: wanted.name, arguments: wanted.arguments },
        },
      };
  }
  return { kind: 'text', text: reply(body) };
}

/**
 * A local server speaking OpenAI's chat-completions wire format, plain JSON and SSE streams, so
 * the real `openai` SDK runs unmodified against it. It also serves Azure OpenAI's paths
 * (`/openai/deployments/{deployment}/chat/completions?api-version=...`, key in `api-key`), can
 * answer with tool calls, and injects faults (`setFault`).
 */
export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const requests: RecordedRequest[] = [];
  const reply = options.reply ?? echoReply;
  const record = options.record ?? true;
  const faults = new FaultController();
  let hits = 0;
  let chatHits = 0;

  const server: Server = createServer((req, res) => {
    hits += 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const path = url.pathname;
      const azure = /^\/openai\/(?:deployments\/([^/]+)\/)?(chat\/completions|models)$/.exec(path);
      let route: 'chat' | 'models' | undefined;
      let deployment: string | undefined;
      let apiVersion: string | undefined;
      if (azure) {
        deployment = azure[1] === undefined ? undefined : decodeURIComponent(azure[1]);
        apiVersion = url.searchParams.get('api-version') ?? undefined;
        const key = req.headers['api-key'];
        if (!key || (options.azureKey !== undefined && key !== options.azureKey)) {
          return json(res, 401, {
            error: {
              code: '401',
              message:
                'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
            },
          });
        }
        if (!apiVersion || (options.azureApiVersions && !options.azureApiVersions.includes(apiVersion))) {
          return json(res, 400, { error: { code: 'BadRequest', message: 'API version not supported' } });
        }
        route = azure[2] === 'models' ? 'models' : 'chat';
        if (route === 'chat' && deployment === undefined) route = undefined;
        if (
          route === 'chat' &&
          options.azureDeployments &&
          !options.azureDeployments.includes(deployment ?? '')
        ) {
          return json(res, 404, {
            error: {
              code: 'DeploymentNotFound',
              message: 'The API deployment for this resource does not exist.',
            },
          });
        }
      } else if (path === '/v1/chat/completions') route = 'chat';
      else if (path === '/v1/models') route = 'models';

      if (route === 'models' && req.method === 'GET') {
        const fault = faults.take(true);
        if (fault) return applyPlainFault(res, fault, () => modelsAnswer(res));
        return modelsAnswer(res);
      }
      if (route !== 'chat' || req.method !== 'POST') {
        return json(res, 404, { error: { message: 'not found', type: 'invalid_request_error' } });
      }
      chatHits += 1;
      let body: RecordedRequest['body'];
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RecordedRequest['body'];
      } catch {
        return json(res, 400, { error: { message: 'invalid JSON body', type: 'invalid_request_error' } });
      }
      const fault = faults.take(false);
      if (record)
        requests.push({
          path,
          headers: req.headers,
          body,
          ...(deployment !== undefined ? { deployment } : {}),
          ...(apiVersion !== undefined ? { apiVersion } : {}),
          ...(fault ? { fault: fault.kind } : {}),
        });
      const answer = () => {
        const p = plan(body, reply, chatHits, options.toolPlan);
        if (body.stream) return streamAnswer(res, body, p, fault);
        if (fault) return applyPlainFault(res, fault, () => plainAnswer(res, body, p));
        plainAnswer(res, body, p);
      };
      if (options.delayMs) setTimeout(answer, options.delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://${host}:${port}`;
  return {
    url,
    baseURL: `${url}/v1`,
    azureEndpoint: url,
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

function modelsAnswer(res: ServerResponse): void {
  json(res, 200, { object: 'list', data: [{ id: 'fake-model', object: 'model', owned_by: 'test' }] });
}

const STATUS_BODIES: Record<number, unknown> = {
  401: {
    error: {
      message: 'Incorrect API key provided.',
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_api_key',
    },
  },
  403: {
    error: { message: 'You are not allowed to use this model.', type: 'invalid_request_error', code: null },
  },
  404: {
    error: { message: 'The model does not exist.', type: 'invalid_request_error', code: 'model_not_found' },
  },
  500: { error: { message: 'The server had an error while processing your request.', type: 'server_error' } },
  502: { error: { message: 'Bad gateway.', type: 'server_error' } },
  503: {
    error: { message: 'The engine is currently overloaded, please try again later.', type: 'server_error' },
  },
  504: { error: { message: 'Gateway timeout.', type: 'server_error' } },
  529: { error: { message: 'Overloaded.', type: 'server_error' } },
};

/** Answers a fault that ends the request before any reply (or delays it, then calls `orElse`). */
function applyPlainFault(res: ServerResponse, fault: FakeFault, orElse: () => void) {
  switch (fault.kind) {
    case 'rate_limit': {
      const headers: Record<string, string> = {};
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
      if (fault.resetHeader !== undefined) {
        headers['x-ratelimit-reset-requests'] = fault.resetHeader;
        headers['x-ratelimit-remaining-requests'] = '0';
      }
      if (fault.resetTokensHeader !== undefined) {
        headers['x-ratelimit-reset-tokens'] = fault.resetTokensHeader;
        headers['x-ratelimit-remaining-tokens'] = '0';
      }
      return json(
        res,
        429,
        {
          error: {
            message: 'Rate limit reached for requests. Please try again later.',
            type: 'requests',
            param: null,
            code: 'rate_limit_exceeded',
          },
        },
        headers,
      );
    }
    case 'status': {
      if (fault.body !== undefined) {
        res.writeHead(fault.status, { 'content-type': 'application/json' });
        res.end(fault.body);
        return;
      }
      return json(res, fault.status, STATUS_BODIES[fault.status] ?? { error: { message: 'error' } });
    }
    case 'context_too_long':
      return json(res, 400, {
        error: {
          message:
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130017 tokens. Please reduce the length of the messages.",
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      });
    case 'hang':
      return;
    case 'garbage': {
      const text = '<html><body>upstream said something {"choices": [</body></html>';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    case 'cut_stream': {
      // A plain reply cut in half: the promised length never arrives.
      const text = JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion', choices: [] });
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

function usage(body: RecordedRequest['body'], text: string) {
  const prompt = body.messages.reduce((n, m) => n + Math.ceil(textOf(m.content).length / 4), 0);
  const completion = Math.ceil(text.length / 4);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function plainAnswer(res: ServerResponse, body: RecordedRequest['body'], p: Plan): void {
  const message =
    p.kind === 'tool'
      ? { role: 'assistant', content: null, tool_calls: [p.call] }
      : { role: 'assistant', content: p.text };
  json(res, 200, {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: [{ index: 0, message, finish_reason: p.kind === 'tool' ? 'tool_calls' : 'stop' }],
    usage: usage(body, p.kind === 'tool' ? p.call.function.arguments : p.text),
  });
}

function streamAnswer(
  res: ServerResponse,
  body: RecordedRequest['body'],
  p: Plan,
  fault: FakeFault | undefined,
) {
  if (fault && fault.kind !== 'cut_stream' && fault.kind !== 'slow_first_token' && fault.kind !== 'garbage') {
    return applyPlainFault(res, fault, () => undefined);
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  if (fault?.kind === 'garbage') {
    res.end('data: <html>upstream said something {"choices": [</html>\n\n');
    return;
  }
  const base = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
  };
  const line = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
  const chunk = (delta: unknown, finish: string | null = null) =>
    line({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] });

  const content: string[] = [];
  if (p.kind === 'tool') {
    content.push(
      chunk({
        tool_calls: [
          {
            index: 0,
            id: p.call.id,
            type: 'function',
            function: { name: p.call.function.name, arguments: '' },
          },
        ],
      }),
    );
    for (const piece of p.call.function.arguments.match(/.{1,8}/gs) ?? [])
      content.push(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
  } else {
    for (const piece of p.text.match(/.{1,8}/gs) ?? ['']) content.push(chunk({ content: piece }));
  }
  const tail = [
    chunk({}, p.kind === 'tool' ? 'tool_calls' : 'stop'),
    line({
      ...base,
      choices: [],
      usage: usage(body, p.kind === 'tool' ? p.call.function.arguments : p.text),
    }),
    'data: [DONE]\n\n',
  ];

  res.write(chunk({ role: 'assistant', content: p.kind === 'tool' ? null : '' }));
  const rest = () => {
    if (fault?.kind === 'cut_stream') {
      const sent = content.slice(0, fault.afterChunks);
      if (sent.length === 0) {
        res.socket?.destroy();
        return;
      }
      res.write(sent.join(''), () => res.socket?.destroy());
      return;
    }
    for (const piece of content) res.write(piece);
    res.end(tail.join(''));
  };
  if (fault?.kind === 'slow_first_token') setTimeout(rest, fault.delayMs);
  else rest();
}
