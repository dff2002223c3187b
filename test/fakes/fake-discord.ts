import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { listenLocal } from '../support/listen.js';

/**
 * A local Discord: the REST API under `/api/v10` and the gateway (plain JSON frames) on one port,
 * faithful enough that the real discord.js runs against it unchanged. Point the client at it with
 * `rest: { api: fake.apiRoot }`; `GET /gateway/bot` and READY hand out this server's own
 * `ws://` URLs, so reconnects and resumes stay local.
 *
 * What it does the way Discord does (read from the API docs and discord.js's source):
 * - REST answers 401 without `Authorization: Bot <token>`; interaction callbacks and webhook
 *   routes are the exceptions, as on Discord (the token in the path is the credential).
 * - A token reset: `revokeToken` makes REST refuse that token and closes the gateway sessions
 *   identified with it with 4004 (Authentication failed), which ends them (no resume).
 * - Messages over 2,000 characters, empty messages and replies to unknown messages with
 *   `fail_if_not_exists` are refused with Discord's 400 bodies; `enforce_nonce` returns the
 *   earlier message instead of creating a second one.
 * - 429s carry the `Retry-After` and `X-RateLimit-*` headers and the `{ message, retry_after,
 *   global }` body.
 * - Interaction callbacks later than 3 s answer 404 10062 (Unknown interaction), a second one
 *   400 40060 (already acknowledged).
 * - Gateway: HELLO, heartbeat ACK, IDENTIFY -> READY + GUILD_CREATE, sequence numbers, and RESUME
 *   -> the dispatches missed since the client's sequence, then RESUMED. A session closed
 *   abnormally (or with 4200, discord.js's "resuming" code) stays resumable and buffers what is
 *   dispatched meanwhile; a normal close (1000/1001) ends it.
 */

export interface FakeGuild {
  id: string;
  name?: string;
  /** Text channels in this guild. */
  channelIds: string[];
}

export interface FakeDiscordOptions {
  /** The address to listen on. Default 127.0.0.1. */
  host?: string;
  /** The bot token the fake accepts. Default a fixed fake token. */
  token?: string;
  /** Port to listen on (down()/up() reuse it). Default: a free one. */
  port?: number;
  /** Guilds the bot is in, sent in READY and as GUILD_CREATE. Default one guild with one channel. */
  guilds?: FakeGuild[];
  /** HELLO's heartbeat interval. Default 5000 ms. */
  heartbeatIntervalMs?: number;
  /** How long an interaction token accepts its initial callback. Default 3000 ms, as Discord. */
  interactionTimeoutMs?: number;
}

export interface SentMessage {
  id: string;
  channelId: string;
  content: string;
  /** The message this one replies to, if any. */
  replyTo?: string;
  failIfNotExists?: boolean;
  nonce?: string;
  allowedMentions?: unknown;
  /** The bot token the message was posted with. */
  token: string;
  at: number;
}

export interface RegisteredCommands {
  /** `global` or the guild id. */
  scope: string;
  applicationId: string;
  commands: CommandBody[];
  at: number;
}

export interface CommandBody {
  name: string;
  description: string;
  type?: number;
  options?: { type: number; name: string; description: string; required?: boolean }[];
  [key: string]: unknown;
}

export interface InteractionCallback {
  interactionId: string;
  token: string;
  /** 4 = message, 5 = deferred message, ... */
  type: number;
  content?: string;
  flags?: number;
  withResponse: boolean;
  /** Milliseconds from dispatching the interaction to its callback. */
  elapsedMs: number;
  /** The id of the interaction's response message (type 4 and 5). */
  responseMessageId?: string;
}

export interface WebhookEdit {
  token: string;
  /** `@original` for an edit of the interaction response, or `followup`. */
  target: string;
  content?: string;
}

export interface GatewayOp {
  op: number;
  d: unknown;
  sessionId?: string;
  at: number;
}

export interface FakeFailure {
  status: number;
  code?: number;
  message?: string;
}

export type FaultRoute = 'messages' | 'commands' | 'callback';

export interface FakeDiscord {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** What discord.js takes as `rest.api` (it appends `/v10`). */
  readonly apiRoot: string;
  readonly gatewayUrl: string;
  readonly port: number;
  /** The token the fake was started with (valid until revoked). */
  readonly token: string;
  /** The bot's user id; also its application id, as for any bot created in the portal. */
  readonly botId: string;
  readonly applicationId: string;
  readonly guilds: readonly FakeGuild[];
  /** Every message the bot created with POST /channels/:id/messages, in order. */
  readonly sent: SentMessage[];
  /** Every command registration (PUT), in order. */
  readonly commands: RegisteredCommands[];
  readonly interactionCallbacks: InteractionCallback[];
  readonly webhookEdits: WebhookEdit[];
  /** Channel ids the bot sent typing to. */
  readonly typing: string[];
  /** Ops the clients sent over the gateway (heartbeats left out). */
  readonly gatewayOps: GatewayOp[];
  /** REST requests as `METHOD /path` (without /api/v10), for assertions on what was called. */
  readonly restLog: string[];
  /** Open gateway connections. */
  readonly connections: number;
  /** The most gateway connections with a live (identified or resumed) session at any one time. */
  readonly peakSessions: number;
  /** MESSAGE_CREATE dispatches written to a live session's socket, by message id. */
  readonly deliveredMessages: ReadonlySet<string>;
  /** Dispatches MESSAGE_CREATE from a user; returns the message id. */
  sendMessageCreate(input: {
    channelId: string;
    /** Default: the guild that owns `channelId`, else the message is a DM. */
    guildId?: string;
    authorId: string;
    content: string;
    /** Prefix `<@bot>` (or `<@!bot>` with 'nick') and list the bot in `mentions`. */
    mentionsBot?: boolean | 'nick';
    /** The author is a bot (or a webhook). */
    authorIsBot?: boolean;
  }): string;
  /** Dispatches a chat-input INTERACTION_CREATE; returns its id and token. */
  sendInteraction(input: {
    name: string;
    /** String options, in order. */
    options?: Record<string, string>;
    channelId: string;
    userId: string;
    guildId?: string;
  }): { id: string; token: string };
  /** Makes `token` valid as well, as a bot token reset in the Developer Portal issues a new one. */
  acceptToken(token: string): void;
  /**
   * Stops accepting `token`: REST answers 401 and every gateway session identified with it is
   * closed with 4004 and ended, as Discord does once a token is reset.
   */
  revokeToken(token: string): void;
  /** Kills every gateway socket without a close frame, as a network cut does; sessions stay resumable. */
  dropConnection(): void;
  /** Stops REST and the gateway (connections refused) until up(). */
  down(): Promise<void>;
  up(): Promise<void>;
  /** The next `times` message POSTs answer 429 with Discord's headers and body. */
  rateLimitNext(times: number, retryAfterSeconds: number, options?: { global?: boolean }): void;
  /**
   * The next `times` requests on a route answer this status (with Discord's error body), after
   * letting `after` requests through first (to fail the second part of a long reply).
   */
  failNext(route: FaultRoute, times: number, failure: FakeFailure, options?: { after?: number }): void;
  /** A DM channel id for this user (created on first use, as POST /users/@me/channels does). */
  dmChannelFor(userId: string): string;
  close(): Promise<void>;
}

const DISCORD_EPOCH = 1_420_070_400_000n;
const DEFAULT_TOKEN = 'ODk0NTYxMjM0NTY3ODkwMTIz.fake.discord-bot-token-for-tests';
const NONCE_WINDOW_MS = 5 * 60_000;

interface Session {
  id: string;
  /** The token it identified with. */
  token: string;
  seq: number;
  socket: WebSocket | undefined;
  /** Every dispatch with its sequence, for RESUME replay (capped). */
  history: { s: number; t: string; d: unknown }[];
}

interface PendingInteraction {
  token: string;
  dispatchedAt: number;
  acknowledged: boolean;
  channelId: string;
}

interface UserObject {
  id: string;
  username: string;
  discriminator: string;
  global_name: string | null;
  avatar: null;
  bot?: boolean;
}

export async function startFakeDiscord(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
  const token = options.token ?? DEFAULT_TOKEN;
  const validTokens = new Set([token]);
  const isValid = (candidate: unknown): candidate is string =>
    typeof candidate === 'string' && validTokens.has(candidate);
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5000;
  const interactionTimeoutMs = options.interactionTimeoutMs ?? 3000;

  let counter = 0n;
  const snowflake = (): string =>
    String(((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (counter++ & 0xfffn));

  const botId = snowflake();
  const guilds: FakeGuild[] = options.guilds ?? [
    { id: snowflake(), name: 'Fake Guild', channelIds: [snowflake()] },
  ];
  const botUser: UserObject = {
    id: botId,
    username: 'fake-agent',
    discriminator: '0',
    global_name: 'Fake Agent',
    avatar: null,
    bot: true,
  };

  const sent: SentMessage[] = [];
  const commands: RegisteredCommands[] = [];
  const interactionCallbacks: InteractionCallback[] = [];
  const webhookEdits: WebhookEdit[] = [];
  const typing: string[] = [];
  const gatewayOps: GatewayOp[] = [];
  const restLog: string[] = [];
  const sessions = new Map<string, Session>();
  const interactions = new Map<string, PendingInteraction>();
  /** Message ids that exist, for `fail_if_not_exists`. */
  const knownMessages = new Set<string>();
  const dmChannels = new Map<string, string>(); // user id -> channel id
  const dmRecipients = new Map<string, string>(); // channel id -> user id
  const nonces = new Map<string, { message: Record<string, unknown>; at: number }>();
  const faults: Record<FaultRoute, { times: number; after: number; failure: FakeFailure } | undefined> = {
    messages: undefined,
    commands: undefined,
    callback: undefined,
  };
  let rateLimit: { times: number; seconds: number; global: boolean } | undefined;

  const guildOf = (channelId: string) => guilds.find((g) => g.channelIds.includes(channelId));
  const dmChannelFor = (userId: string): string => {
    let channelId = dmChannels.get(userId);
    if (channelId === undefined) {
      channelId = snowflake();
      dmChannels.set(userId, channelId);
      dmRecipients.set(channelId, userId);
    }
    return channelId;
  };
  const userObject = (id: string, bot = false): UserObject => ({
    id,
    username: `user${id.slice(-4)}`,
    discriminator: '0',
    global_name: null,
    avatar: null,
    ...(bot ? { bot: true } : {}),
  });

  // ---------------------------------------------------------------- gateway

  const wss = new WebSocketServer({ noServer: true });
  const live = new Set<WebSocket>();
  /** Every message of each channel (users' and the bot's), oldest first, for GET .../messages. */
  const history = new Map<string, Record<string, unknown>[]>();
  const remember = (channelId: string, message: Record<string, unknown>) => {
    const list = history.get(channelId) ?? [];
    list.push(message);
    history.set(channelId, list);
  };
  /** Discord's `after` paging: the `limit` (default 50, max 100) oldest messages after it, newest first. */
  const channelMessages = (channelId: string, query: URLSearchParams) => {
    const after = BigInt(query.get('after') ?? '0');
    const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 50)));
    return (history.get(channelId) ?? [])
      .filter((m) => BigInt(m.id as string) > after)
      .slice(0, limit)
      .reverse();
  };
  const deliveredMessages = new Set<string>();
  let peakSessions = 0;
  const countSessions = () => {
    const liveSessions = [...sessions.values()].filter((s) => s.socket !== undefined).length;
    peakSessions = Math.max(peakSessions, liveSessions);
  };

  const dispatch = (t: string, d: unknown) => {
    for (const session of sessions.values()) {
      session.seq += 1;
      const frame = { s: session.seq, t, d };
      session.history.push(frame);
      if (session.history.length > 1000) session.history.shift();
      session.socket?.send(JSON.stringify({ op: 0, ...frame }));
      if (session.socket && t === 'MESSAGE_CREATE') deliveredMessages.add((d as { id: string }).id);
    }
  };

  const guildCreate = (guild: FakeGuild) => ({
    id: guild.id,
    name: guild.name ?? 'Fake Guild',
    icon: null,
    splash: null,
    discovery_splash: null,
    owner_id: '1',
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: 0,
    default_message_notifications: 0,
    explicit_content_filter: 0,
    roles: [
      {
        id: guild.id,
        name: '@everyone',
        color: 0,
        hoist: false,
        icon: null,
        unicode_emoji: null,
        position: 0,
        permissions: '0',
        managed: false,
        mentionable: false,
        flags: 0,
      },
    ],
    emojis: [],
    stickers: [],
    features: [],
    mfa_level: 0,
    system_channel_id: null,
    system_channel_flags: 0,
    rules_channel_id: null,
    vanity_url_code: null,
    description: null,
    banner: null,
    premium_tier: 0,
    preferred_locale: 'en-US',
    public_updates_channel_id: null,
    nsfw_level: 0,
    premium_progress_bar_enabled: false,
    safety_alerts_channel_id: null,
    joined_at: new Date().toISOString(),
    large: false,
    unavailable: false,
    member_count: 2,
    voice_states: [],
    members: [],
    channels: guild.channelIds.map((id, position) => channelObject(id, position)),
    threads: [],
    presences: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
  });

  const channelObject = (id: string, position = 0): Record<string, unknown> | undefined => {
    const guild = guildOf(id);
    if (guild) {
      return {
        id,
        type: 0,
        guild_id: guild.id,
        name: `channel-${id.slice(-4)}`,
        position,
        permission_overwrites: [],
        topic: null,
        nsfw: false,
        last_message_id: null,
        rate_limit_per_user: 0,
        parent_id: null,
      };
    }
    const recipient = dmRecipients.get(id);
    if (recipient !== undefined) {
      return { id, type: 1, last_message_id: null, flags: 0, recipients: [userObject(recipient)] };
    }
    return undefined;
  };

  const onGatewayMessage = (socket: WebSocket, raw: string, state: { session?: Session }) => {
    let payload: { op?: unknown; d?: unknown };
    try {
      payload = JSON.parse(raw) as { op?: unknown; d?: unknown };
    } catch {
      socket.close(4002, 'Error while decoding payload.');
      return;
    }
    const op = payload.op;
    if (op !== 1)
      gatewayOps.push({ op: Number(op), d: payload.d, sessionId: state.session?.id, at: Date.now() });
    if (op === 1) {
      socket.send(JSON.stringify({ op: 11 }));
      return;
    }
    if (op === 2) {
      if (state.session) return socket.close(4005, 'Already authenticated.');
      const d = payload.d as { token?: unknown } | undefined;
      if (!isValid(d?.token)) return socket.close(4004, 'Authentication failed.');
      const session: Session = {
        id: randomBytes(16).toString('hex'),
        token: d.token,
        seq: 0,
        socket,
        history: [],
      };
      sessions.set(session.id, session);
      state.session = session;
      countSessions();
      // READY first, then the guilds, as Discord does; only this session gets them.
      const send = (t: string, data: unknown) => {
        session.seq += 1;
        const frame = { s: session.seq, t, d: data };
        session.history.push(frame);
        socket.send(JSON.stringify({ op: 0, ...frame }));
      };
      send('READY', {
        v: 10,
        user: botUser,
        user_settings: {},
        private_channels: [],
        guilds: guilds.map((g) => ({ id: g.id, unavailable: true })),
        session_id: session.id,
        session_type: 'normal',
        resume_gateway_url: gatewayUrl(),
        shard: [0, 1],
        application: { id: botId, flags: 0 },
        _trace: ['fake-discord'],
      });
      for (const guild of guilds) send('GUILD_CREATE', guildCreate(guild));
      return;
    }
    if (op === 6) {
      const d = payload.d as { token?: unknown; session_id?: unknown; seq?: unknown } | undefined;
      if (!isValid(d?.token)) return socket.close(4004, 'Authentication failed.');
      const session = typeof d.session_id === 'string' ? sessions.get(d.session_id) : undefined;
      const seq = typeof d.seq === 'number' ? d.seq : -1;
      if (!session || seq > session.seq) {
        socket.send(JSON.stringify({ op: 9, d: false }));
        return;
      }
      if (session.socket && session.socket !== socket) session.socket.terminate();
      session.socket = socket;
      state.session = session;
      countSessions();
      for (const frame of session.history)
        if (frame.s > seq) socket.send(JSON.stringify({ op: 0, ...frame }));
      session.seq += 1;
      const resumed = { s: session.seq, t: 'RESUMED', d: { _trace: ['fake-discord'] } };
      session.history.push(resumed);
      socket.send(JSON.stringify({ op: 0, ...resumed }));
      return;
    }
    if (!state.session) socket.close(4003, 'Not authenticated.');
  };

  wss.on('connection', (socket: WebSocket) => {
    live.add(socket);
    const state: { session?: Session } = {};
    socket.send(JSON.stringify({ op: 10, d: { heartbeat_interval: heartbeatIntervalMs } }));
    socket.on('message', (data) => onGatewayMessage(socket, data.toString(), state));
    socket.on('close', (code) => {
      live.delete(socket);
      const session = state.session;
      if (!session || session.socket !== socket) return;
      session.socket = undefined;
      // A normal close ends the session on Discord; anything else may be resumed.
      if (code === 1000 || code === 1001) sessions.delete(session.id);
    });
    socket.on('error', () => undefined);
  });

  // ---------------------------------------------------------------- REST

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        route(req, res, Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        json(res, 500, { message: `fake-discord: ${(error as Error).message}`, code: 0 });
      }
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  server.keepAliveTimeout = 60_000;

  const takeFault = (name: FaultRoute): FakeFailure | undefined => {
    const fault = faults[name];
    if (!fault) return undefined;
    if (fault.after > 0) {
      fault.after -= 1;
      return undefined;
    }
    fault.times -= 1;
    if (fault.times <= 0) faults[name] = undefined;
    return fault.failure;
  };

  const answerFailure = (res: ServerResponse, failure: FakeFailure) =>
    json(res, failure.status, {
      message: failure.message ?? defaultMessage(failure.status),
      code: failure.code ?? 0,
    });

  const route = (req: IncomingMessage, res: ServerResponse, rawBody: string) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    if (!url.pathname.startsWith('/api/v10/')) return json(res, 404, { message: '404: Not Found', code: 0 });
    const path = url.pathname.slice('/api/v10'.length);
    restLog.push(`${method} ${path}`);
    const parts = path
      .split('/')
      .slice(1)
      .map((part) => decodeURIComponent(part));
    let body: unknown;
    if (rawBody.length > 0) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        return json(res, 400, { message: '400: Bad Request', code: 0 });
      }
    }

    // The interaction token is the credential on these routes; Discord ignores the bot token.
    if (parts[0] === 'interactions' && parts[3] === 'callback' && method === 'POST') {
      return interactionCallback(res, parts[1] ?? '', parts[2] ?? '', body, url);
    }
    if (parts[0] === 'webhooks') return webhook(res, method, parts, body);

    const auth = req.headers.authorization;
    const authToken = auth?.startsWith('Bot ') ? auth.slice('Bot '.length) : undefined;
    if (!isValid(authToken)) {
      return json(res, 401, { message: '401: Unauthorized', code: 0 });
    }

    if (method === 'GET' && path === '/gateway/bot') {
      return json(res, 200, {
        url: gatewayUrl(),
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 },
      });
    }
    if (method === 'GET' && path === '/users/@me') return json(res, 200, botUser);
    if (method === 'POST' && path === '/users/@me/channels') {
      const recipient = (body as { recipient_id?: unknown } | undefined)?.recipient_id;
      if (typeof recipient !== 'string') return invalidForm(res, 'recipient_id', 'BASE_TYPE_REQUIRED');
      return json(res, 200, channelObject(dmChannelFor(recipient)));
    }
    if (parts[0] === 'channels' && parts[1] !== undefined) {
      const channelId = parts[1];
      const channel = channelObject(channelId);
      if (!channel) return json(res, 404, { message: 'Unknown Channel', code: 10003 });
      if (method === 'GET' && parts.length === 2) return json(res, 200, channel);
      if (method === 'POST' && parts[2] === 'typing' && parts.length === 3) {
        typing.push(channelId);
        res.writeHead(204).end();
        return;
      }
      if (method === 'POST' && parts[2] === 'messages' && parts.length === 3) {
        return createMessage(res, channelId, body, authToken);
      }
      if (method === 'GET' && parts[2] === 'messages' && parts.length === 3) {
        return json(res, 200, channelMessages(channelId, url.searchParams));
      }
    }
    if (parts[0] === 'applications' && method === 'PUT') {
      const global = parts.length === 3 && parts[2] === 'commands';
      const guild = parts.length === 5 && parts[2] === 'guilds' && parts[4] === 'commands';
      if (global || guild)
        return putCommands(res, parts[1] ?? '', global ? 'global' : (parts[3] ?? ''), body);
    }
    json(res, 404, { message: '404: Not Found', code: 0 });
  };

  const createMessage = (res: ServerResponse, channelId: string, body: unknown, authToken: string) => {
    if (rateLimit) {
      const { seconds, global } = rateLimit;
      rateLimit.times -= 1;
      if (rateLimit.times <= 0) rateLimit = undefined;
      const headers: Record<string, string> = {
        'retry-after': String(Math.ceil(seconds)),
        'x-ratelimit-scope': global ? 'global' : 'user',
      };
      if (global) headers['x-ratelimit-global'] = 'true';
      else {
        headers['x-ratelimit-limit'] = '5';
        headers['x-ratelimit-remaining'] = '0';
        headers['x-ratelimit-reset'] = (Date.now() / 1000 + seconds).toFixed(3);
        headers['x-ratelimit-reset-after'] = seconds.toFixed(3);
        headers['x-ratelimit-bucket'] = 'fake0messages0bucket';
      }
      return json(
        res,
        429,
        { message: 'You are being rate limited.', retry_after: seconds, global },
        headers,
      );
    }
    const fault = takeFault('messages');
    if (fault) return answerFailure(res, fault);
    const input = (body ?? {}) as {
      content?: unknown;
      nonce?: unknown;
      enforce_nonce?: unknown;
      message_reference?: { message_id?: unknown; fail_if_not_exists?: unknown };
      allowed_mentions?: unknown;
    };
    const content = typeof input.content === 'string' ? input.content : '';
    if (content.length === 0) return json(res, 400, { message: 'Cannot send an empty message', code: 50006 });
    if ([...content].length > 2000) {
      return invalidForm(res, 'content', 'BASE_TYPE_MAX_LENGTH', 'Must be 2000 or fewer in length.');
    }
    const nonce =
      typeof input.nonce === 'string' || typeof input.nonce === 'number' ? String(input.nonce) : undefined;
    if (nonce !== undefined && nonce.length > 25) {
      return invalidForm(res, 'nonce', 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    }
    const now = Date.now();
    if (nonce !== undefined && input.enforce_nonce === true) {
      const earlier = nonces.get(`${channelId}:${nonce}`);
      if (earlier && now - earlier.at < NONCE_WINDOW_MS) return json(res, 200, earlier.message);
    }
    const reference = input.message_reference;
    const replyTo = typeof reference?.message_id === 'string' ? reference.message_id : undefined;
    const failIfNotExists = reference?.fail_if_not_exists !== false;
    if (replyTo !== undefined && failIfNotExists && !knownMessages.has(replyTo)) {
      return invalidForm(res, 'message_reference', 'MESSAGE_REFERENCE_UNKNOWN_MESSAGE', 'Unknown message');
    }
    const id = snowflake();
    knownMessages.add(id);
    sent.push({
      id,
      channelId,
      content,
      ...(replyTo !== undefined ? { replyTo, failIfNotExists } : {}),
      ...(nonce !== undefined ? { nonce } : {}),
      ...(input.allowed_mentions !== undefined ? { allowedMentions: input.allowed_mentions } : {}),
      token: authToken,
      at: now,
    });
    const message = messageObject({
      id,
      channelId,
      author: botUser,
      content,
      ...(replyTo !== undefined ? { replyTo } : {}),
      ...(nonce !== undefined ? { nonce } : {}),
    });
    if (nonce !== undefined) nonces.set(`${channelId}:${nonce}`, { message, at: now });
    remember(channelId, message);
    json(res, 200, message);
  };

  const putCommands = (res: ServerResponse, applicationId: string, scope: string, body: unknown) => {
    if (applicationId !== botId) return json(res, 403, { message: 'Missing Access', code: 50001 });
    if (scope !== 'global' && !guilds.some((g) => g.id === scope)) {
      return json(res, 403, { message: 'Missing Access', code: 50001 });
    }
    const fault = takeFault('commands');
    if (fault) return answerFailure(res, fault);
    if (!Array.isArray(body)) return invalidForm(res, '_errors', 'BASE_TYPE_ARRAY', 'Must be an array.');
    const list = body as CommandBody[];
    for (const [i, command] of list.entries()) {
      const problem = commandProblem(command);
      if (problem) return invalidForm(res, `${i}.${problem.field}`, problem.code, problem.message);
    }
    commands.push({ scope, applicationId, commands: list, at: Date.now() });
    json(
      res,
      200,
      list.map((command) => ({
        id: snowflake(),
        application_id: applicationId,
        version: snowflake(),
        type: 1,
        default_member_permissions: null,
        nsfw: false,
        ...(scope === 'global' ? {} : { guild_id: scope }),
        ...command,
      })),
    );
  };

  const interactionCallback = (
    res: ServerResponse,
    interactionId: string,
    interactionToken: string,
    body: unknown,
    url: URL,
  ) => {
    const pending = interactions.get(interactionId);
    const elapsedMs = pending ? Date.now() - pending.dispatchedAt : 0;
    if (!pending || pending.token !== interactionToken || elapsedMs > interactionTimeoutMs) {
      return json(res, 404, { message: 'Unknown interaction', code: 10062 });
    }
    if (pending.acknowledged) {
      return json(res, 400, { message: 'Interaction has already been acknowledged.', code: 40060 });
    }
    const fault = takeFault('callback');
    if (fault) return answerFailure(res, fault);
    const input = (body ?? {}) as { type?: unknown; data?: { content?: unknown; flags?: unknown } };
    const type = Number(input.type);
    const withResponse = url.searchParams.get('with_response') === 'true';
    pending.acknowledged = true;
    const messageId = type === 4 || type === 5 ? snowflake() : undefined;
    if (messageId !== undefined) knownMessages.add(messageId);
    const content = typeof input.data?.content === 'string' ? input.data.content : undefined;
    interactionCallbacks.push({
      interactionId,
      token: interactionToken,
      type,
      ...(content !== undefined ? { content } : {}),
      ...(typeof input.data?.flags === 'number' ? { flags: input.data.flags } : {}),
      withResponse,
      elapsedMs,
      ...(messageId !== undefined ? { responseMessageId: messageId } : {}),
    });
    if (!withResponse) {
      res.writeHead(204).end();
      return;
    }
    json(res, 200, {
      interaction: {
        id: interactionId,
        type: 2,
        activity_instance_id: null,
        response_message_id: messageId ?? null,
        response_message_loading: type === 5,
        response_message_ephemeral: false,
      },
      resource:
        messageId === undefined
          ? undefined
          : {
              type,
              message: messageObject({
                id: messageId,
                channelId: pending.channelId,
                author: botUser,
                content: content ?? '',
                interaction: true,
              }),
            },
    });
  };

  const webhook = (res: ServerResponse, method: string, parts: string[], body: unknown) => {
    // /webhooks/:appId/:token[/messages/@original]
    const [, applicationId, hookToken, messages, target] = parts;
    const pending = [...interactions.values()].find((i) => i.token === hookToken);
    if (applicationId !== botId || !pending)
      return json(res, 404, { message: 'Unknown Webhook', code: 10015 });
    const content = (body as { content?: unknown } | undefined)?.content;
    const isOriginal = messages === 'messages' && target === '@original';
    if ((method === 'PATCH' && isOriginal) || (method === 'POST' && messages === undefined)) {
      webhookEdits.push({
        token: hookToken ?? '',
        target: isOriginal ? '@original' : 'followup',
        ...(typeof content === 'string' ? { content } : {}),
      });
      const id = snowflake();
      knownMessages.add(id);
      return json(
        res,
        200,
        messageObject({
          id,
          channelId: pending.channelId,
          author: botUser,
          content: typeof content === 'string' ? content : '',
        }),
      );
    }
    json(res, 404, { message: '404: Not Found', code: 0 });
  };

  // ---------------------------------------------------------------- lifecycle

  let port = options.port ?? 0;
  const host = options.host ?? '127.0.0.1';
  const listen = async () => {
    port = await listenLocal(server, port, host);
  };
  const gatewayUrl = () => `ws://${host}:${port}`;
  const stopListening = () =>
    new Promise<void>((resolve) => {
      for (const socket of live) socket.terminate();
      server.closeAllConnections();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });

  await listen();

  return {
    get url() {
      return `http://${host}:${port}`;
    },
    get apiRoot() {
      return `http://${host}:${port}/api`;
    },
    get gatewayUrl() {
      return gatewayUrl();
    },
    get port() {
      return port;
    },
    get connections() {
      return live.size;
    },
    get peakSessions() {
      return peakSessions;
    },
    deliveredMessages,
    token,
    botId,
    applicationId: botId,
    guilds,
    sent,
    commands,
    interactionCallbacks,
    webhookEdits,
    typing,
    gatewayOps,
    restLog,
    sendMessageCreate(input) {
      const guildId = input.guildId ?? guildOf(input.channelId)?.id;
      if (guildId === undefined && !dmRecipients.has(input.channelId)) {
        dmChannels.set(input.authorId, input.channelId);
        dmRecipients.set(input.channelId, input.authorId);
      }
      const id = snowflake();
      knownMessages.add(id);
      const mention = input.mentionsBot === 'nick' ? `<@!${botId}>` : `<@${botId}>`;
      const content = input.mentionsBot ? `${mention} ${input.content}` : input.content;
      const author = userObject(input.authorId, input.authorIsBot ?? false);
      const message = messageObject({
        id,
        channelId: input.channelId,
        author,
        content,
        mentions: input.mentionsBot ? [botUser] : [],
      });
      remember(input.channelId, message);
      dispatch('MESSAGE_CREATE', {
        ...message,
        channel_type: guildId === undefined ? 1 : 0,
        ...(guildId !== undefined
          ? {
              guild_id: guildId,
              member: { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 },
            }
          : {}),
      });
      return id;
    },
    sendInteraction(input) {
      const guildId = input.guildId ?? guildOf(input.channelId)?.id;
      if (guildId === undefined && !dmRecipients.has(input.channelId)) {
        dmChannels.set(input.userId, input.channelId);
        dmRecipients.set(input.channelId, input.userId);
      }
      const id = snowflake();
      const interactionToken = `aW50ZXJhY3Rpb246${id}${randomBytes(48).toString('base64url')}`;
      interactions.set(id, {
        token: interactionToken,
        dispatchedAt: Date.now(),
        acknowledged: false,
        channelId: input.channelId,
      });
      const user = userObject(input.userId);
      const options = Object.entries(input.options ?? {}).map(([name, value]) => ({ name, type: 3, value }));
      dispatch('INTERACTION_CREATE', {
        id,
        application_id: botId,
        type: 2,
        data: { id: snowflake(), name: input.name, type: 1, ...(options.length > 0 ? { options } : {}) },
        channel_id: input.channelId,
        channel:
          guildId === undefined
            ? { id: input.channelId, type: 1, last_message_id: null, flags: 0, recipients: [user] }
            : channelObject(input.channelId),
        token: interactionToken,
        version: 1,
        app_permissions: '2248473465835073',
        locale: 'en-US',
        entitlements: [],
        authorizing_integration_owners: { '0': guildId ?? input.userId },
        context: guildId === undefined ? 1 : 0,
        attachment_size_limit: 10_485_760,
        ...(guildId === undefined
          ? { user }
          : {
              guild_id: guildId,
              guild_locale: 'en-US',
              member: {
                user,
                roles: [],
                permissions: '2248473465835073',
                joined_at: new Date().toISOString(),
                deaf: false,
                mute: false,
                flags: 0,
              },
            }),
      });
      return { id, token: interactionToken };
    },
    acceptToken(newToken) {
      validTokens.add(newToken);
    },
    revokeToken(oldToken) {
      validTokens.delete(oldToken);
      for (const session of [...sessions.values()]) {
        if (session.token !== oldToken) continue;
        sessions.delete(session.id);
        session.socket?.close(4004, 'Authentication failed.');
      }
    },
    dropConnection() {
      for (const socket of live) socket.terminate();
    },
    down: stopListening,
    up: listen,
    rateLimitNext(times, retryAfterSeconds, rateOptions = {}) {
      rateLimit = { times, seconds: retryAfterSeconds, global: rateOptions.global ?? false };
    },
    failNext(name, times, failure, failOptions = {}) {
      faults[name] = { times, after: failOptions.after ?? 0, failure };
    },
    dmChannelFor,
    async close() {
      await stopListening();
      wss.close();
    },
  };
}

function messageObject(input: {
  id: string;
  channelId: string;
  author: UserObject;
  content: string;
  mentions?: UserObject[];
  replyTo?: string;
  nonce?: string;
  interaction?: boolean;
}): Record<string, unknown> {
  return {
    id: input.id,
    channel_id: input.channelId,
    author: input.author,
    content: input.content,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: input.mentions ?? [],
    mention_roles: [],
    attachments: [],
    embeds: [],
    pinned: false,
    // 19 = REPLY, 20 = CHAT_INPUT_COMMAND, 0 = DEFAULT
    type: input.interaction ? 20 : input.replyTo !== undefined ? 19 : 0,
    flags: 0,
    components: [],
    ...(input.nonce !== undefined ? { nonce: input.nonce } : {}),
    ...(input.replyTo !== undefined
      ? { message_reference: { type: 0, message_id: input.replyTo, channel_id: input.channelId } }
      : {}),
  };
}

function invalidForm(res: ServerResponse, field: string, code: string, message = 'This field is required') {
  // Discord nests field errors by path: { content: { _errors: [...] } }.
  const errors: Record<string, unknown> = {};
  let cursor = errors;
  const path = field.split('.');
  for (const [i, key] of path.entries()) {
    if (i === path.length - 1) cursor[key] = { _errors: [{ code, message }] };
    else {
      const next: Record<string, unknown> = {};
      cursor[key] = next;
      cursor = next;
    }
  }
  json(res, 400, { message: 'Invalid Form Body', code: 50035, errors });
}

function commandProblem(command: CommandBody): { field: string; code: string; message: string } | undefined {
  const name = /^[-_\p{L}\p{N}]{1,32}$/u;
  if (
    typeof command.name !== 'string' ||
    !name.test(command.name) ||
    command.name !== command.name.toLowerCase()
  ) {
    return { field: 'name', code: 'APPLICATION_COMMAND_INVALID_NAME', message: 'Command name is invalid' };
  }
  if (
    typeof command.description !== 'string' ||
    command.description.length < 1 ||
    command.description.length > 100
  ) {
    return {
      field: 'description',
      code: 'BASE_TYPE_BAD_LENGTH',
      message: 'Must be between 1 and 100 in length.',
    };
  }
  for (const [i, option] of (command.options ?? []).entries()) {
    if (typeof option.name !== 'string' || !name.test(option.name)) {
      return {
        field: `options.${i}.name`,
        code: 'APPLICATION_COMMAND_INVALID_NAME',
        message: 'Invalid name',
      };
    }
    if (
      typeof option.description !== 'string' ||
      option.description.length < 1 ||
      option.description.length > 100
    ) {
      return {
        field: `options.${i}.description`,
        code: 'BASE_TYPE_BAD_LENGTH',
        message: 'Must be between 1 and 100 in length.',
      };
    }
  }
  return undefined;
}

function defaultMessage(status: number): string {
  if (status === 403) return 'Missing Permissions';
  if (status === 404) return 'Unknown Channel';
  if (status >= 500) return 'Internal Server Error';
  return `${status}: error`;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
