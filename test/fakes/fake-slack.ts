import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { listenLocal } from '../support/listen.js';

/**
 * A local Slack: the Web API (`POST /api/<method>`, form-encoded or JSON, token in
 * `Authorization: Bearer` or a `token` field), Socket Mode (a WebSocket at `/socket` handed out by
 * apps.connections.open), and helpers that send Events API and slash-command requests signed the
 * way Slack signs them.
 *
 * Faithful where the adapter depends on it: Slack answers HTTP 200 with `{ ok: false, error }` for
 * refusals and 429 with `Retry-After` for rate limits; tokens are checked by type (an app token
 * only opens sockets); Socket Mode tickets are single-use; the server says `hello` first, expects
 * an ack `{ envelope_id, payload? }` per envelope, and pings the client. Tokens rotate as on
 * Slack: a new one is issued (`rotateTokens`) while the old one still works, until it is revoked
 * (`revokeToken`) and refused with `token_revoked`.
 */

export interface FakeSlackOptions {
  /** The address to listen on. Default 127.0.0.1. */
  host?: string;
  botToken?: string;
  appToken?: string;
  botUserId?: string;
  botId?: string;
  teamId?: string;
  /** Listen on this port instead of a free one. */
  port?: number;
  /** How often the Socket Mode server pings each client. Default 5 s (Slack's clients expect one within 30 s). */
  pingIntervalMs?: number;
}

export interface ApiCall {
  method: string;
  token: string | undefined;
  params: Record<string, unknown>;
  contentType: string | undefined;
}

export interface PostedMessage {
  channel: string;
  text: string;
  thread_ts?: string;
  ts: string;
  /** Message metadata (`event_type`, `event_payload`), when the poster attached some. */
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
}

export interface SocketAck {
  envelope_id: string;
  payload?: unknown;
}

export interface EnvelopeOptions {
  /** Slack sets it for slash commands and interactivity. Default: true for slash_commands. */
  acceptsResponsePayload?: boolean;
  /** A redelivery (`retry_attempt`), as Slack sends after an unacked envelope. */
  retryAttempt?: number;
  envelopeId?: string;
}

export interface TokenRotation {
  botToken?: string;
  appToken?: string;
}

export interface FakeSlack {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Web API root for `slackApiUrl` (with its trailing slash). */
  apiUrl: string;
  port: number;
  /** The bot token Slack accepts now. */
  readonly botToken: string;
  /** The app token Slack accepts now. */
  readonly appToken: string;
  botUserId: string;
  botId: string;
  teamId: string;
  /** Every Web API call that reached a method (rate-limited ones included). */
  calls: ApiCall[];
  /** chat.postMessage calls Slack accepted, in order. */
  posted: PostedMessage[];
  /** Acks received over Socket Mode, in order. */
  acks: SocketAck[];
  /** Pings received from Socket Mode clients. */
  readonly clientPings: number;
  /** Open Socket Mode connections. */
  readonly sockets: number;
  /** The most Socket Mode connections open at any one time. */
  readonly peakSockets: number;
  /**
   * Delivers an Events API payload as Slack does: to the newest connection, again (with a higher
   * `retry_attempt`) when no ack came within `ackTimeoutMs`, and on the next connection if none is
   * open, until some client acks it. Returns the envelope id.
   */
  publishEvent(payload: unknown, options?: { ackTimeoutMs?: number }): string;
  /** Published events not acked yet. */
  readonly unacked: number;
  /** The next `n` Web API calls get 429 with `Retry-After: retryAfterSeconds`. */
  rateLimitNext(n: number, retryAfterSeconds: number): void;
  /** The next `n` calls to `method` get `{ ok: false, error }` (e.g. `not_in_channel`). */
  failNext(method: string, error: string, n?: number): void;
  /** Closes the port (every connection and socket dropped) until `up()`. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  /** Issues new tokens; the ones they replace keep working until `revokeToken`. */
  rotateTokens(next: TokenRotation): void;
  /**
   * Refuses `token` from now on (`token_revoked`) and closes the Socket Mode connections opened
   * with it, so a client still relying on one shows; events they left unacked are redelivered.
   */
  revokeToken(token: string): void;
  /** Open Socket Mode connections per app token they were opened with. */
  socketsByToken(): Record<string, number>;
  /** Resolves once a Socket Mode client has connected and been sent hello. */
  waitForSocket(timeoutMs?: number): Promise<void>;
  /** Sends an envelope to the newest Socket Mode connection; returns its envelope_id. */
  pushEnvelope(type: 'events_api' | 'slash_commands', payload: unknown, options?: EnvelopeOptions): string;
  /** Resolves with the ack for `envelopeId`, or rejects after `timeoutMs`. */
  waitForAck(envelopeId: string, timeoutMs?: number): Promise<SocketAck>;
  close(): Promise<void>;
}

export async function startFakeSlack(options: FakeSlackOptions = {}): Promise<FakeSlack> {
  let botToken = options.botToken ?? 'xoxb-fake-bot-token';
  let appToken = options.appToken ?? 'xapp-fake-app-token';
  /** Issued, not revoked yet: the current token of each kind and any it replaced. */
  const botTokens = new Set([botToken]);
  const appTokens = new Set([appToken]);
  const revoked = new Set<string>();
  const botUserId = options.botUserId ?? 'UBOT0001';
  const botId = options.botId ?? 'BBOT0001';
  const teamId = options.teamId ?? 'TFAKE0001';
  const calls: ApiCall[] = [];
  const posted: PostedMessage[] = [];
  const acks: SocketAck[] = [];
  const ackWaiters = new Map<string, (ack: SocketAck) => void>();
  const socketWaiters: (() => void)[] = [];
  /** One-time tickets from apps.connections.open, with the app token that asked for each. */
  const tickets = new Map<string, string>();
  const sockets = new Set<WebSocket>();
  const socketTokens = new Map<WebSocket, string>();
  let peakSockets = 0;
  /** Events published with `publishEvent` and not acked yet, oldest first. */
  const outstanding = new Map<
    string,
    {
      payload: unknown;
      attempt: number;
      ackTimeoutMs: number;
      timer?: NodeJS.Timeout;
      /** The connection it was last sent on. */
      sentOn?: WebSocket;
    }
  >();
  const deliverOutstanding = (envelopeId: string) => {
    const entry = outstanding.get(envelopeId);
    const ws = [...sockets].at(-1);
    if (!entry || !ws) return;
    clearTimeout(entry.timer);
    ws.send(
      JSON.stringify({
        envelope_id: envelopeId,
        type: 'events_api',
        payload: entry.payload,
        accepts_response_payload: false,
        retry_attempt: entry.attempt,
        retry_reason: entry.attempt > 0 ? 'timeout' : '',
      }),
    );
    entry.attempt += 1;
    entry.sentOn = ws;
    entry.timer = setTimeout(() => deliverOutstanding(envelopeId), entry.ackTimeoutMs);
    entry.timer.unref();
  };
  const failures = new Map<string, { error: string; left: number }>();
  let rateLimited = 0;
  let retryAfterSeconds = 1;
  let clientPings = 0;
  let tsCounter = 0;
  let port = options.port ?? 0;
  const host = options.host ?? '127.0.0.1';

  const wss = new WebSocketServer({ noServer: true });
  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error: 'internal_error', detail: String(error) }));
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const ticket = url.searchParams.get('ticket') ?? '';
    // Slack's socket URLs carry a one-time ticket from apps.connections.open.
    const ticketToken = tickets.get(ticket);
    tickets.delete(ticket);
    if (url.pathname !== '/socket' || ticketToken === undefined || revoked.has(ticketToken)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(ws, ticketToken));
  });

  function onSocket(ws: WebSocket, token: string): void {
    sockets.add(ws);
    socketTokens.set(ws, token);
    peakSockets = Math.max(peakSockets, sockets.size);
    ws.on('close', () => {
      sockets.delete(ws);
      socketTokens.delete(ws);
    });
    // ws answers pings with pongs by itself (autoPong); counting them shows the client's heartbeat.
    ws.on('ping', () => {
      clientPings += 1;
    });
    ws.on('message', (data) => {
      let message: unknown;
      try {
        message = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (typeof message !== 'object' || message === null) return;
      const envelopeId = (message as { envelope_id?: unknown }).envelope_id;
      if (typeof envelopeId !== 'string') return;
      const ack: SocketAck = { envelope_id: envelopeId, payload: (message as { payload?: unknown }).payload };
      acks.push(ack);
      const entry = outstanding.get(envelopeId);
      if (entry) {
        clearTimeout(entry.timer);
        outstanding.delete(envelopeId);
      }
      ackWaiters.get(envelopeId)?.(ack);
      ackWaiters.delete(envelopeId);
    });
    const pinger = setInterval(() => ws.ping('fake-slack'), options.pingIntervalMs ?? 5_000);
    ws.on('close', () => clearInterval(pinger));
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: sockets.size,
        debug_info: { host: 'fake-slack', approximate_connection_time: 18060 },
        connection_info: { app_id: 'AFAKE0001' },
      }),
    );
    for (const resolve of socketWaiters.splice(0)) resolve();
    // Events whose connection closed before it acked them go to the new one; those still held by
    // an open connection wait for their ack timeout, as on Slack.
    for (const [envelopeId, entry] of outstanding) {
      if (entry.sentOn === undefined || !sockets.has(entry.sentOn)) deliverOutstanding(envelopeId);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const match = /^\/api\/([A-Za-z.]+)$/.exec(url.pathname);
    if (req.method !== 'POST' || !match) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    const method = match[1] as string;
    const raw = await readBody(req);
    const contentType = req.headers['content-type'];
    const params = parseParams(raw, contentType);
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ')
      ? header.slice('Bearer '.length)
      : typeof params.token === 'string'
        ? params.token
        : undefined;
    calls.push({ method, token, params, contentType });

    if (rateLimited > 0) {
      rateLimited -= 1;
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(retryAfterSeconds) });
      res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
      return;
    }
    const answer = (body: Record<string, unknown>) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    const refuse = (error: string) => answer({ ok: false, error });

    const expected = method === 'apps.connections.open' ? appTokens : botTokens;
    if (token === undefined || token === '') return refuse('not_authed');
    if (revoked.has(token)) return refuse('token_revoked');
    if (!expected.has(token)) {
      const otherKind = botTokens.has(token) || appTokens.has(token);
      return refuse(otherKind ? 'not_allowed_token_type' : 'invalid_auth');
    }
    const failure = failures.get(method);
    if (failure) {
      failure.left -= 1;
      if (failure.left <= 0) failures.delete(method);
      return refuse(failure.error);
    }

    switch (method) {
      case 'auth.test':
        return answer({
          ok: true,
          url: 'https://fake.slack.com/',
          team: 'Fake Team',
          user: 'agent',
          team_id: teamId,
          user_id: botUserId,
          bot_id: botId,
          is_enterprise_install: false,
        });
      case 'apps.connections.open': {
        const ticket = randomUUID();
        tickets.set(ticket, token);
        return answer({ ok: true, url: `ws://${host}:${port}/socket?ticket=${ticket}&app_id=AFAKE0001` });
      }
      case 'chat.postMessage': {
        const channel = params.channel;
        const text = params.text;
        if (typeof channel !== 'string' || channel === '') return refuse('channel_not_found');
        if (typeof text !== 'string' || text === '') return refuse('no_text');
        if (text.length > 40_000) return refuse('msg_too_long');
        tsCounter += 1;
        const ts = `${Math.floor(Date.now() / 1000)}.${String(tsCounter).padStart(6, '0')}`;
        const threadTs = typeof params.thread_ts === 'string' ? params.thread_ts : undefined;
        // The Web API client sends `metadata` as a JSON string in the form.
        const metadata =
          typeof params.metadata === 'string'
            ? (JSON.parse(params.metadata) as PostedMessage['metadata'])
            : (params.metadata as PostedMessage['metadata']);
        posted.push({
          channel,
          text,
          ts,
          ...(threadTs === undefined ? {} : { thread_ts: threadTs }),
          ...(metadata === undefined ? {} : { metadata }),
        });
        return answer({
          ok: true,
          channel,
          ts,
          message: { type: 'message', user: botUserId, bot_id: botId, text, ts, thread_ts: threadTs },
        });
      }
      case 'conversations.history':
      case 'conversations.replies': {
        // The bot's own messages (the only ones this fake keeps), newest first, as Slack lists them;
        // metadata only with include_all_metadata.
        const channel = params.channel;
        if (typeof channel !== 'string' || channel === '') return refuse('channel_not_found');
        const thread = method === 'conversations.replies' ? params.ts : undefined;
        const withMetadata = params.include_all_metadata === 'true' || params.include_all_metadata === true;
        const limit = Math.min(1000, Number(params.limit ?? 100));
        const messages = posted
          .filter((m) => m.channel === channel && (thread === undefined || m.thread_ts === thread))
          .slice(-limit)
          .reverse()
          .map((m) => ({
            type: 'message',
            user: botUserId,
            bot_id: botId,
            text: m.text,
            ts: m.ts,
            ...(m.thread_ts === undefined ? {} : { thread_ts: m.thread_ts }),
            ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}),
          }));
        return answer({ ok: true, messages, has_more: false });
      }
      default:
        return refuse('unknown_method');
    }
  }

  const listen = async () => {
    port = await listenLocal(server, port, host);
  };
  const shut = () =>
    new Promise<void>((resolve) => {
      for (const ws of sockets) ws.terminate();
      sockets.clear();
      server.closeAllConnections();
      server.close(() => resolve());
    });

  await listen();
  const url = `http://${host}:${port}`;

  return {
    url,
    apiUrl: `${url}/api/`,
    port,
    get botToken() {
      return botToken;
    },
    get appToken() {
      return appToken;
    },
    botUserId,
    botId,
    teamId,
    calls,
    posted,
    acks,
    get clientPings() {
      return clientPings;
    },
    get sockets() {
      return sockets.size;
    },
    get peakSockets() {
      return peakSockets;
    },
    get unacked() {
      return outstanding.size;
    },
    publishEvent(payload, publishOptions = {}) {
      const envelopeId = randomUUID();
      outstanding.set(envelopeId, { payload, attempt: 0, ackTimeoutMs: publishOptions.ackTimeoutMs ?? 3000 });
      deliverOutstanding(envelopeId);
      return envelopeId;
    },
    rateLimitNext(n, seconds) {
      rateLimited = n;
      retryAfterSeconds = seconds;
    },
    failNext(method, error, n = 1) {
      failures.set(method, { error, left: n });
    },
    down: shut,
    up: listen,
    rotateTokens(next) {
      if (next.botToken !== undefined) {
        botToken = next.botToken;
        botTokens.add(botToken);
      }
      if (next.appToken !== undefined) {
        appToken = next.appToken;
        appTokens.add(appToken);
      }
    },
    revokeToken(token) {
      botTokens.delete(token);
      appTokens.delete(token);
      revoked.add(token);
      for (const [ws, opener] of socketTokens) if (opener === token) ws.close(1000, 'token_revoked');
    },
    socketsByToken() {
      const counts: Record<string, number> = {};
      for (const token of socketTokens.values()) counts[token] = (counts[token] ?? 0) + 1;
      return counts;
    },
    waitForSocket(timeoutMs = 5_000) {
      if (sockets.size > 0) return Promise.resolve();
      return withTimeout(new Promise<void>((resolve) => socketWaiters.push(resolve)), timeoutMs, 'a socket');
    },
    pushEnvelope(type, payload, envelopeOptions = {}) {
      const ws = [...sockets].at(-1);
      if (!ws) throw new Error('no Socket Mode client is connected');
      const envelopeId = envelopeOptions.envelopeId ?? randomUUID();
      ws.send(
        JSON.stringify({
          envelope_id: envelopeId,
          type,
          payload,
          accepts_response_payload: envelopeOptions.acceptsResponsePayload ?? type === 'slash_commands',
          ...(type === 'events_api'
            ? {
                retry_attempt: envelopeOptions.retryAttempt ?? 0,
                retry_reason: envelopeOptions.retryAttempt ? 'timeout' : '',
              }
            : {}),
        }),
      );
      return envelopeId;
    },
    waitForAck(envelopeId, timeoutMs = 5_000) {
      const done = acks.find((ack) => ack.envelope_id === envelopeId);
      if (done) return Promise.resolve(done);
      return withTimeout(
        new Promise<SocketAck>((resolve) => ackWaiters.set(envelopeId, resolve)),
        timeoutMs,
        `the ack of ${envelopeId}`,
      );
    },
    async close() {
      for (const entry of outstanding.values()) clearTimeout(entry.timer);
      wss.close();
      if (server.listening) await shut();
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseParams(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (raw === '') return {};
  if (contentType?.startsWith('application/json')) {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`fake Slack: waited ${ms} ms for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- Requests as Slack sends them to an app ----

/** Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:${timestamp}:${rawBody}`. */
export function slackSignature(signingSecret: string, timestamp: number, rawBody: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

export interface SignedPostOptions {
  /** Unix seconds in `x-slack-request-timestamp`. Default now. */
  timestamp?: number;
  /** Sign with this secret instead (a forged or misconfigured request). */
  wrongSecret?: string;
  /** Leave the signature headers out. */
  unsigned?: boolean;
  /** `x-slack-retry-num`, as Slack adds to a redelivery. */
  retryNum?: number;
}

export interface SignedPostResult {
  status: number;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

/** POSTs `rawBody` as Slack does: its content type, user agent and signature headers. */
export async function postSignedToApp(
  url: string,
  signingSecret: string,
  rawBody: string,
  contentType: 'application/json' | 'application/x-www-form-urlencoded',
  options: SignedPostOptions = {},
): Promise<SignedPostResult> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': contentType,
    'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
  };
  if (!options.unsigned) {
    headers['x-slack-request-timestamp'] = String(timestamp);
    headers['x-slack-signature'] = slackSignature(options.wrongSecret ?? signingSecret, timestamp, rawBody);
  }
  if (options.retryNum !== undefined) {
    headers['x-slack-retry-num'] = String(options.retryNum);
    headers['x-slack-retry-reason'] = 'http_error';
  }
  const response = await fetch(url, { method: 'POST', headers, body: rawBody });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

/** An Events API request (`event_callback`, `url_verification`, ...) as JSON. */
export function postSlackEvent(
  url: string,
  signingSecret: string,
  body: unknown,
  options?: SignedPostOptions,
): Promise<SignedPostResult> {
  return postSignedToApp(url, signingSecret, JSON.stringify(body), 'application/json', options);
}

/** A slash-command request, form-encoded (Slack sends exactly `application/x-www-form-urlencoded`). */
export function postSlashCommand(
  url: string,
  signingSecret: string,
  fields: Record<string, string>,
  options?: SignedPostOptions,
): Promise<SignedPostResult> {
  return postSignedToApp(
    url,
    signingSecret,
    new URLSearchParams(fields).toString(),
    'application/x-www-form-urlencoded',
    options,
  );
}

// ---- Payload builders, shaped like Slack's ----

let sequence = 0;
function nextTs(): string {
  sequence += 1;
  return `${Math.floor(Date.now() / 1000)}.${String(100_000 + sequence).padStart(6, '0')}`;
}

export interface EventCallbackInput {
  event: Record<string, unknown>;
  eventId?: string;
  teamId?: string;
  botUserId?: string;
}

/** The `event_callback` envelope Slack wraps every event in. */
export function eventCallback(input: EventCallbackInput): Record<string, unknown> {
  return {
    token: 'deprecated-verification-token',
    team_id: input.teamId ?? 'TFAKE0001',
    api_app_id: 'AFAKE0001',
    event: input.event,
    type: 'event_callback',
    event_id: input.eventId ?? `Ev${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [
      {
        enterprise_id: null,
        team_id: input.teamId ?? 'TFAKE0001',
        user_id: input.botUserId ?? 'UBOT0001',
        is_bot: true,
        is_enterprise_install: false,
      },
    ],
    is_ext_shared_channel: false,
    event_context: `4-${randomUUID()}`,
  };
}

export function appMentionEvent(input: {
  user: string;
  text: string;
  channel?: string;
  ts?: string;
  threadTs?: string;
}): Record<string, unknown> {
  const ts = input.ts ?? nextTs();
  return {
    type: 'app_mention',
    user: input.user,
    text: input.text,
    ts,
    ...(input.threadTs === undefined ? {} : { thread_ts: input.threadTs }),
    team: 'TFAKE0001',
    channel: input.channel ?? 'C0GENERAL',
    event_ts: ts,
  };
}

export function messageEvent(input: {
  user?: string;
  text: string;
  channel?: string;
  channelType?: 'im' | 'channel' | 'group' | 'mpim';
  ts?: string;
  threadTs?: string;
  subtype?: string;
  botId?: string;
}): Record<string, unknown> {
  const ts = input.ts ?? nextTs();
  return {
    type: 'message',
    ...(input.user === undefined ? {} : { user: input.user }),
    text: input.text,
    ts,
    ...(input.threadTs === undefined ? {} : { thread_ts: input.threadTs }),
    ...(input.subtype === undefined ? {} : { subtype: input.subtype }),
    ...(input.botId === undefined ? {} : { bot_id: input.botId }),
    team: 'TFAKE0001',
    channel: input.channel ?? 'D0DIRECT1',
    channel_type: input.channelType ?? 'im',
    event_ts: ts,
  };
}

/** A slash command's fields, as Slack posts them (and as a Socket Mode envelope's payload). */
export function slashCommandFields(input: {
  command: string;
  text?: string;
  user?: string;
  channel?: string;
}): Record<string, string> {
  return {
    token: 'deprecated-verification-token',
    team_id: 'TFAKE0001',
    team_domain: 'fake',
    channel_id: input.channel ?? 'C0GENERAL',
    channel_name: 'general',
    user_id: input.user ?? 'UPERSON01',
    user_name: 'person',
    command: input.command,
    text: input.text ?? '',
    api_app_id: 'AFAKE0001',
    is_enterprise_install: 'false',
    response_url: 'https://hooks.slack.com/commands/TFAKE0001/1/fake',
    trigger_id: `${Date.now()}.${randomUUID()}`,
  };
}
