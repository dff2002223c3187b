import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenLocal } from '../support/listen.js';

/**
 * A local Telegram Bot API server, faithful where the adapter depends on it, so the real grammy
 * runs unmodified against it (`client: { apiRoot: fake.url }`):
 *
 * - `POST /bot<token>/<method>` with JSON, form-urlencoded or query parameters; answers
 *   `{ ok: true, result }` or `{ ok: false, error_code, description, parameters? }`. A wrong token
 *   is 401 `Unauthorized`, an unknown method 404 `Not Found`.
 * - `getUpdates` long-polls for up to `timeout` seconds; `offset` confirms and drops every update
 *   below it (a negative one keeps only the last `-offset`); a newer `getUpdates` ends a pending
 *   one with 409, as Telegram does when two pollers share a token; 409 too while a webhook is set.
 * - `sendMessage` checks the chat (400 `chat not found`, 403 when blocked), parses `parse_mode:
 *   'HTML'` like Telegram (400 `can't parse entities` on an unknown or unbalanced tag), limits the
 *   parsed text to 4,096 characters, trims it, and checks `reply_parameters`.
 * - Faults: `rateLimitNext` (429 with `retry_after`), `failNext` (any answer), `blockChat`, and
 *   `down()`/`up()` (connections refused, then the same port again).
 * - Token rotation: `setTokens` changes which tokens the bot answers to; a poll pending with a
 *   token no longer valid ends with 401.
 *
 * Not served: files (multipart), inline mode, payments, and every method not listed in `handlers`.
 */

export type ChatType = 'private' | 'group' | 'supergroup' | 'channel';

export interface FakeUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  username?: string;
  language_code?: string;
}

export interface FakeChat {
  id: number;
  type: ChatType;
  title?: string;
  first_name?: string;
  username?: string;
}

export interface FakeEntity {
  type: string;
  offset: number;
  length: number;
  language?: string;
  url?: string;
  user?: FakeUser;
}

export interface FakeMessage {
  message_id: number;
  from?: FakeUser;
  chat: FakeChat;
  date: number;
  text?: string;
  entities?: FakeEntity[];
  reply_to_message?: FakeMessage;
}

export interface FakeUpdate {
  update_id: number;
  message?: FakeMessage;
  [field: string]: unknown;
}

/** A message the bot sent, as the fake stored it. */
export interface SentMessage {
  chatId: number;
  messageId: number;
  /** The `text` parameter as sent (HTML source when `parseMode` is HTML). */
  source: string;
  parseMode: string | undefined;
  /** The text Telegram shows: tags parsed, entities decoded, trimmed. */
  text: string;
  entities: FakeEntity[];
  /** The message this one replies to, if the reply target existed. */
  replyTo: number | undefined;
}

export interface ApiCall {
  method: string;
  /** The token in the URL. */
  token: string;
  params: Record<string, unknown>;
  status: number;
}

export interface ApiErrorAnswer {
  error_code: number;
  description: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

export interface PushTextOptions {
  /**
   * Default from the id, as Telegram numbers chats: positive private (the user's id), `-100...`
   * supergroup, other negative ids group.
   */
  chatType?: Exclude<ChatType, 'channel'>;
  /** Reply to the bot's latest message in this chat (one is made up if it sent none). */
  replyToBotMessage?: boolean;
  /** Reply to this message of the chat. */
  replyTo?: number;
  /** Entities as given, instead of the ones Telegram would detect (mentions, commands). */
  entities?: FakeEntity[];
}

export interface FakeTelegramOptions {
  /** The address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Default `123456789:AAFakeTokenForTestsOnly_abcdefghij`. */
  token?: string;
  botId?: number;
  /** Default `fake_agent_bot`. */
  botUsername?: string;
  /** Listen on this port instead of a free one. */
  port?: number;
}

export interface WebhookDelivery {
  status: number;
  body: string;
}

export interface FakeTelegram {
  /** The `apiRoot` for grammy (no trailing slash). */
  url: string;
  /** The token the bot answers to (the first of `setTokens`, if called). */
  readonly token: string;
  bot: FakeUser & { username: string };
  /** Messages the bot sent, in order. */
  sent: SentMessage[];
  /** `sendChatAction` calls. */
  actions: { chatId: number; action: string }[];
  /** The last list given to `setMyCommands`, if any. */
  readonly commands: { command: string; description: string }[] | undefined;
  /** Every API call with a valid token, faulted ones included. */
  calls: ApiCall[];
  /** Calls refused with 401 because their token was not (or no longer, if pending) valid. */
  refused: { method: string; token: string }[];
  readonly getUpdatesCalls: number;
  /**
   * Polls ended with 409 by a poll from another address: two instances polling one token. (One
   * process's own abandoned poll ended by its next one, as on stopping, is not counted.)
   */
  readonly conflicts: number;
  /** The highest update id confirmed by an `offset` (0 before any). */
  readonly acknowledgedUpTo: number;
  /** Updates not confirmed yet. */
  readonly pending: readonly FakeUpdate[];
  /** How many times `getUpdates` returned each update id. */
  deliveries: Map<number, number>;
  readonly webhook: { url: string; secretToken: string | undefined } | undefined;
  readonly listening: boolean;

  addChat(chat: FakeChat): void;
  /** Queues an update (its `update_id` assigned here) and wakes a pending `getUpdates`. */
  pushUpdate(update: Omit<FakeUpdate, 'update_id'>): FakeUpdate;
  /** A user's text message as Telegram delivers it, queued for `getUpdates`. */
  pushText(chatId: number, userId: number, text: string, options?: PushTextOptions): FakeUpdate;
  /** The same update, not queued: for webhook deliveries. */
  textUpdate(chatId: number, userId: number, text: string, options?: PushTextOptions): FakeUpdate;
  /** POSTs an update to a webhook URL as Telegram does, with the secret header if given. */
  deliverWebhook(url: string, update: unknown, secretToken?: string): Promise<WebhookDelivery>;
  /**
   * The next `n` calls of `method` (default sendMessage) get 429 with `retry_after`, after letting
   * `after` calls through (default 0).
   */
  rateLimitNext(n: number, retryAfterSeconds: number, options?: { method?: string; after?: number }): void;
  /** The next `n` calls of `method` get this error answer, after letting `after` through. */
  failNext(method: string, n: number, error: ApiErrorAnswer, after?: number): void;
  /** Messages to this chat get 403 `bot was blocked by the user`. */
  blockChat(chatId: number): void;
  /**
   * The tokens the bot answers to from now on, as around a rotation at @BotFather (which revokes
   * the old token). Polls pending with a token no longer valid end with 401 at once.
   */
  setTokens(tokens: readonly string[]): void;
  /** Stops listening and drops every connection: clients see connection refused. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_TOKEN = '123456789:AAFakeTokenForTestsOnly_abcdefghij';
const MESSAGE_LIMIT = 4096;
const COMMAND_NAME = /^[a-z0-9_]{1,32}$/;

class ApiFailure extends Error {
  constructor(readonly answer: ApiErrorAnswer) {
    super(answer.description);
  }
}

const badRequest = (description: string) =>
  new ApiFailure({ error_code: 400, description: `Bad Request: ${description}` });

interface Waiter {
  /** The client's address. */
  from: string | undefined;
  token: string;
  offset: number;
  limit: number;
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

interface ChatState {
  chat: FakeChat;
  messages: Map<number, FakeMessage>;
  nextMessageId: number;
  lastBotMessage: number | undefined;
}

export async function startFakeTelegram(options: FakeTelegramOptions = {}): Promise<FakeTelegram> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? DEFAULT_TOKEN;
  let validTokens: readonly string[] = [token];
  const bot = {
    id: options.botId ?? Number(token.split(':')[0]),
    is_bot: true,
    first_name: 'Fake Agent',
    username: options.botUsername ?? 'fake_agent_bot',
  };
  const chats = new Map<number, ChatState>();
  const queue: FakeUpdate[] = [];
  const waiters = new Set<Waiter>();
  /** Per method, what the next calls get: an error answer, or `null` to let one through. */
  const faults = new Map<string, (ApiErrorAnswer | null)[]>();
  const blocked = new Set<number>();
  const sent: SentMessage[] = [];
  const actions: { chatId: number; action: string }[] = [];
  const calls: ApiCall[] = [];
  const refused: { method: string; token: string }[] = [];
  const deliveries = new Map<number, number>();
  let commands: { command: string; description: string }[] | undefined;
  let webhook: { url: string; secretToken: string | undefined } | undefined;
  let nextUpdateId = 700_000_001;
  let acknowledgedUpTo = 0;
  let getUpdatesCalls = 0;
  let conflicts = 0;
  let listening = false;
  const now = () => Math.floor(Date.now() / 1000);

  function chatState(chatId: number): ChatState {
    const state = chats.get(chatId);
    if (state === undefined) throw badRequest('chat not found');
    return state;
  }

  function addChat(chat: FakeChat): ChatState {
    const existing = chats.get(chat.id);
    if (existing !== undefined) return existing;
    const state: ChatState = { chat, messages: new Map(), nextMessageId: 1, lastBotMessage: undefined };
    chats.set(chat.id, state);
    return state;
  }

  function store(state: ChatState, message: Omit<FakeMessage, 'message_id'>): FakeMessage {
    const full = { message_id: state.nextMessageId++, ...message } as FakeMessage;
    state.messages.set(full.message_id, full);
    return full;
  }

  // --- getUpdates -------------------------------------------------------------------------------

  function confirm(offset: number): void {
    if (offset > 0) {
      acknowledgedUpTo = Math.max(acknowledgedUpTo, offset - 1);
      while (queue.length > 0 && (queue[0] as FakeUpdate).update_id < offset) queue.shift();
    } else if (offset < 0) {
      const keep = -offset;
      const dropped = queue.splice(0, Math.max(0, queue.length - keep));
      const last = dropped.at(-1);
      if (last !== undefined) acknowledgedUpTo = Math.max(acknowledgedUpTo, last.update_id);
    }
  }

  function available(offset: number, limit: number): FakeUpdate[] {
    return queue.filter((u) => offset <= 0 || u.update_id >= offset).slice(0, limit);
  }

  function deliver(updates: FakeUpdate[]): FakeUpdate[] {
    for (const u of updates) deliveries.set(u.update_id, (deliveries.get(u.update_id) ?? 0) + 1);
    return updates;
  }

  function wakeWaiters(): void {
    for (const waiter of [...waiters]) {
      const updates = available(waiter.offset, waiter.limit);
      if (updates.length === 0) continue;
      endWaiter(waiter);
      answer(waiter.res, 200, { ok: true, result: deliver(updates) });
    }
  }

  function endWaiter(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    waiters.delete(waiter);
  }

  function getUpdates(params: Record<string, unknown>, res: ServerResponse, callToken: string): unknown {
    getUpdatesCalls += 1;
    if (webhook !== undefined)
      throw new ApiFailure({
        error_code: 409,
        description:
          "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      });
    // A newer poll wins; the older one learns that another instance is polling.
    const from = res.req?.socket.remoteAddress;
    for (const waiter of [...waiters]) {
      if (waiter.from !== from) conflicts += 1;
      endWaiter(waiter);
      answer(waiter.res, 409, {
        ok: false,
        error_code: 409,
        description:
          'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
      });
    }
    const offset = intParam(params, 'offset') ?? 0;
    const limit = Math.min(100, Math.max(1, intParam(params, 'limit') ?? 100));
    const timeout = Math.max(0, intParam(params, 'timeout') ?? 0);
    confirm(offset);
    const updates = available(offset, limit);
    if (updates.length > 0 || timeout === 0) return deliver(updates);
    const waiter: Waiter = {
      from,
      token: callToken,
      offset,
      limit,
      res,
      timer: setTimeout(() => {
        endWaiter(waiter);
        answer(res, 200, { ok: true, result: [] });
      }, timeout * 1000),
    };
    waiters.add(waiter);
    res.on('close', () => endWaiter(waiter));
    return PENDING;
  }

  // --- sending ----------------------------------------------------------------------------------

  function sendMessage(params: Record<string, unknown>): FakeMessage {
    const chatId = chatIdParam(params);
    const state = chatState(chatId);
    if (blocked.has(chatId))
      throw new ApiFailure({ error_code: 403, description: 'Forbidden: bot was blocked by the user' });
    const source = typeof params.text === 'string' ? params.text : '';
    const parseMode = typeof params.parse_mode === 'string' ? params.parse_mode : undefined;
    let parsed: { text: string; entities: FakeEntity[] };
    if (parseMode === undefined || parseMode === '') parsed = { text: source, entities: [] };
    else if (parseMode.toLowerCase() === 'html') parsed = parseHtml(source);
    else if (parseMode === 'MarkdownV2' || parseMode === 'Markdown') parsed = { text: source, entities: [] };
    else throw badRequest(`unsupported parse_mode "${parseMode}"`);
    const trimmed = trim(parsed);
    if (trimmed.text.length === 0) throw badRequest('message text is empty');
    if (trimmed.text.length > MESSAGE_LIMIT) throw badRequest('message is too long');

    const reply = objectParam(params, 'reply_parameters') as
      | { message_id?: unknown; allow_sending_without_reply?: unknown }
      | undefined;
    const replyId = reply !== undefined ? Number(reply.message_id) : intParam(params, 'reply_to_message_id');
    const allowWithout =
      reply?.allow_sending_without_reply === true || params.allow_sending_without_reply === true;
    let replyTo: FakeMessage | undefined;
    if (replyId !== undefined) {
      replyTo = state.messages.get(replyId);
      if (replyTo === undefined && !allowWithout) throw badRequest('message to be replied not found');
    }
    const message = store(state, {
      from: bot,
      chat: state.chat,
      date: now(),
      text: trimmed.text,
      ...(trimmed.entities.length > 0 ? { entities: trimmed.entities } : {}),
      ...(replyTo !== undefined ? { reply_to_message: replyTo } : {}),
    });
    state.lastBotMessage = message.message_id;
    sent.push({
      chatId,
      messageId: message.message_id,
      source,
      parseMode,
      text: trimmed.text,
      entities: trimmed.entities,
      replyTo: replyTo?.message_id,
    });
    return message;
  }

  const CHAT_ACTIONS = new Set([
    'typing',
    'upload_photo',
    'record_video',
    'upload_video',
    'record_voice',
    'upload_voice',
    'upload_document',
    'choose_sticker',
    'find_location',
    'record_video_note',
    'upload_video_note',
  ]);

  const handlers: Record<
    string,
    (params: Record<string, unknown>, res: ServerResponse, token: string) => unknown
  > = {
    getMe: () => ({
      ...bot,
      can_join_groups: true,
      can_read_all_group_messages: false,
      supports_inline_queries: false,
      can_connect_to_business: false,
      has_main_web_app: false,
    }),
    getUpdates,
    deleteWebhook: (params) => {
      webhook = undefined;
      if (params.drop_pending_updates === true || params.drop_pending_updates === 'true') {
        const last = queue.at(-1);
        if (last !== undefined) confirm(last.update_id + 1);
      }
      return true;
    },
    setWebhook: (params) => {
      const url = typeof params.url === 'string' ? params.url : '';
      const secretToken = typeof params.secret_token === 'string' ? params.secret_token : undefined;
      if (secretToken !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secretToken))
        throw badRequest('secret token contains unallowed characters');
      webhook = url === '' ? undefined : { url, secretToken };
      return true;
    },
    getWebhookInfo: () => ({
      url: webhook?.url ?? '',
      has_custom_certificate: false,
      pending_update_count: queue.length,
    }),
    sendMessage: (params) => sendMessage(params),
    sendChatAction: (params) => {
      const chatId = chatIdParam(params);
      chatState(chatId);
      const action = typeof params.action === 'string' ? params.action : '';
      if (!CHAT_ACTIONS.has(action)) throw badRequest('wrong parameter action in request');
      actions.push({ chatId, action });
      return true;
    },
    setMyCommands: (params) => {
      const list = objectParam(params, 'commands');
      if (!Array.isArray(list)) throw badRequest('parameter "commands" is required');
      if (list.length > 100) throw badRequest('too many commands');
      const out: { command: string; description: string }[] = [];
      for (const item of list as { command?: unknown; description?: unknown }[]) {
        const command = String(item.command ?? '');
        const description = String(item.description ?? '');
        if (!COMMAND_NAME.test(command)) throw badRequest('BOT_COMMAND_INVALID');
        if (description.length < 1 || description.length > 256)
          throw badRequest('BOT_COMMAND_DESCRIPTION_INVALID');
        out.push({ command, description });
      }
      commands = out;
      return true;
    },
    getMyCommands: () => commands ?? [],
  };

  // --- HTTP -------------------------------------------------------------------------------------

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const route = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
      if (route === null) return answer(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      const method = route[2] as string;
      const callToken = decodeURIComponent(route[1] as string);
      if (!validTokens.includes(callToken)) {
        refused.push({ method, token: callToken });
        return answer(res, 401, UNAUTHORIZED);
      }
      const handler = handlers[method];
      if (handler === undefined)
        return answer(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      let params: Record<string, unknown>;
      try {
        params = { ...Object.fromEntries(url.searchParams), ...parseBody(req, Buffer.concat(chunks)) };
      } catch (error) {
        return fail(res, method, callToken, {}, (error as ApiFailure).answer);
      }
      const fault = faults.get(method)?.shift();
      if (fault !== undefined && fault !== null) return fail(res, method, callToken, params, fault);
      try {
        const result = handler(params, res, callToken);
        calls.push({ method, token: callToken, params, status: 200 });
        if (result !== PENDING) answer(res, 200, { ok: true, result });
      } catch (error) {
        if (!(error instanceof ApiFailure)) throw error;
        fail(res, method, callToken, params, error.answer);
      }
    });
  });

  function fail(
    res: ServerResponse,
    method: string,
    callToken: string,
    params: Record<string, unknown>,
    error: ApiErrorAnswer,
  ) {
    calls.push({ method, token: callToken, params, status: error.error_code });
    answer(res, error.error_code, { ok: false, ...error });
  }

  function setTokens(tokens: readonly string[]): void {
    if (tokens.length === 0) throw new RangeError('setTokens needs at least one token');
    validTokens = [...tokens];
    for (const waiter of [...waiters]) {
      if (validTokens.includes(waiter.token)) continue;
      refused.push({ method: 'getUpdates', token: waiter.token });
      endWaiter(waiter);
      answer(waiter.res, 401, UNAUTHORIZED);
    }
  }

  async function listen(port: number): Promise<number> {
    const bound = await listenLocal(server, port, host);
    listening = true;
    return bound;
  }

  async function down(): Promise<void> {
    if (!listening) return;
    listening = false;
    for (const waiter of [...waiters]) endWaiter(waiter);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  const port = await listen(options.port ?? 0);

  function textMessage(chatId: number, userId: number, text: string, opts: PushTextOptions): FakeMessage {
    const chatType = opts.chatType ?? defaultChatType(chatId);
    const from: FakeUser = {
      id: userId,
      is_bot: false,
      first_name: `User ${userId}`,
      username: `user${userId}`,
      language_code: 'en',
    };
    const state = addChat(
      chatType === 'private'
        ? { id: chatId, type: 'private', first_name: from.first_name, username: from.username as string }
        : { id: chatId, type: chatType, title: `Test ${chatType} ${chatId}` },
    );
    let replyTo: FakeMessage | undefined;
    if (opts.replyTo !== undefined) replyTo = state.messages.get(opts.replyTo);
    else if (opts.replyToBotMessage) {
      const last = state.lastBotMessage;
      replyTo =
        last !== undefined
          ? state.messages.get(last)
          : store(state, { from: bot, chat: state.chat, date: now(), text: 'an earlier answer' });
    }
    const entities = opts.entities ?? detectEntities(text);
    return store(state, {
      from,
      chat: state.chat,
      date: now(),
      text,
      ...(entities.length > 0 ? { entities } : {}),
      ...(replyTo !== undefined ? { reply_to_message: replyTo } : {}),
    });
  }

  function addFaults(method: string, n: number, after: number, error: ApiErrorAnswer): void {
    const list = faults.get(method) ?? [];
    for (let i = 0; i < after; i++) list.push(null);
    for (let i = 0; i < n; i++) list.push(error);
    faults.set(method, list);
  }

  function pushUpdate(update: Omit<FakeUpdate, 'update_id'>): FakeUpdate {
    const full = { update_id: nextUpdateId++, ...update } as FakeUpdate;
    queue.push(full);
    wakeWaiters();
    return full;
  }

  return {
    url: `http://${host}:${port}`,
    get token() {
      return validTokens[0] as string;
    },
    bot,
    sent,
    actions,
    calls,
    refused,
    deliveries,
    get commands() {
      return commands;
    },
    get getUpdatesCalls() {
      return getUpdatesCalls;
    },
    get conflicts() {
      return conflicts;
    },
    get acknowledgedUpTo() {
      return acknowledgedUpTo;
    },
    get pending() {
      return [...queue];
    },
    get webhook() {
      return webhook;
    },
    get listening() {
      return listening;
    },
    addChat: (chat) => {
      addChat(chat);
    },
    pushUpdate,
    pushText: (chatId, userId, text, opts = {}) =>
      pushUpdate({ message: textMessage(chatId, userId, text, opts) }),
    textUpdate: (chatId, userId, text, opts = {}) => ({
      update_id: nextUpdateId++,
      message: textMessage(chatId, userId, text, opts),
    }),
    deliverWebhook: async (url, update, secretToken) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(secretToken !== undefined ? { 'x-telegram-bot-api-secret-token': secretToken } : {}),
        },
        body: JSON.stringify(update),
      });
      return { status: response.status, body: await response.text() };
    },
    rateLimitNext: (n, retryAfterSeconds, { method = 'sendMessage', after = 0 } = {}) =>
      addFaults(method, n, after, {
        error_code: 429,
        description: `Too Many Requests: retry after ${retryAfterSeconds}`,
        parameters: { retry_after: retryAfterSeconds },
      }),
    failNext: (method, n, error, after = 0) => addFaults(method, n, after, error),
    blockChat: (chatId) => {
      blocked.add(chatId);
    },
    setTokens,
    down,
    up: async () => {
      if (!listening) await listen(port);
    },
    close: async () => {
      await down();
    },
  };
}

const PENDING = Symbol('pending');
const UNAUTHORIZED = { ok: false, error_code: 401, description: 'Unauthorized' };

function defaultChatType(chatId: number): Exclude<ChatType, 'channel'> {
  if (chatId > 0) return 'private';
  return String(chatId).startsWith('-100') ? 'supergroup' : 'group';
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The Bot API takes JSON, urlencoded forms and query strings alike (files need multipart). */
function parseBody(req: IncomingMessage, raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'application/json') {
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
      return parsed as Record<string, unknown>;
    } catch {
      throw badRequest("can't parse JSON object");
    }
  }
  if (type === 'application/x-www-form-urlencoded')
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  throw badRequest(`the fake does not parse ${type || 'bodies without a content type'}`);
}

function intParam(params: Record<string, unknown>, name: string): number | undefined {
  const value = params[name];
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n)) throw badRequest(`invalid ${name} specified`);
  return n;
}

function chatIdParam(params: Record<string, unknown>): number {
  const value = params.chat_id;
  if (value === undefined || value === '') throw badRequest('chat_id is empty');
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n)) throw badRequest('chat not found');
  return n;
}

/** Objects arrive as JSON values in a JSON body, and as JSON strings in forms and queries. */
function objectParam(params: Record<string, unknown>, name: string): unknown {
  const value = params[name];
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    throw badRequest(`can't parse ${name} JSON object`);
  }
}

/** Mentions and commands, as Telegram marks them in a user's text. Offsets in UTF-16 units. */
export function detectEntities(text: string): FakeEntity[] {
  const entities: FakeEntity[] = [];
  for (const m of text.matchAll(/(^|\s)(\/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?)(?=$|\s)/g))
    entities.push({
      type: 'bot_command',
      offset: m.index + (m[1] as string).length,
      length: (m[2] as string).length,
    });
  for (const m of text.matchAll(/(^|[^\w@/])(@[A-Za-z0-9_]{5,32})\b/g))
    entities.push({
      type: 'mention',
      offset: m.index + (m[1] as string).length,
      length: (m[2] as string).length,
    });
  return entities.sort((a, b) => a.offset - b.offset);
}

const HTML_ENTITY_TYPES: Record<string, string> = {
  b: 'bold',
  strong: 'bold',
  i: 'italic',
  em: 'italic',
  u: 'underline',
  ins: 'underline',
  s: 'strikethrough',
  strike: 'strikethrough',
  del: 'strikethrough',
  a: 'text_link',
  code: 'code',
  pre: 'pre',
  'tg-spoiler': 'spoiler',
  span: 'spoiler',
  blockquote: 'blockquote',
  'tg-emoji': 'custom_emoji',
};

/**
 * Telegram's HTML parse mode: the tags above only, properly nested; `&lt; &gt; &amp; &quot;` and
 * numeric references decoded; a `&` that starts no reference stays literal (as in tdlib). Errors
 * name the byte offset, as Telegram's do.
 */
export function parseHtml(html: string): { text: string; entities: FakeEntity[] } {
  const failAt = (what: string, i: number) =>
    badRequest(`can't parse entities: ${what} at byte offset ${Buffer.byteLength(html.slice(0, i))}`);
  let text = '';
  const stack: { tag: string; offset: number; attrs: Record<string, string>; language?: string }[] = [];
  const entities: FakeEntity[] = [];
  let i = 0;
  while (i < html.length) {
    const c = html[i] as string;
    if (c === '<') {
      const rest = html.slice(i);
      if (rest.startsWith('</')) {
        const close = /^<\/([A-Za-z][A-Za-z0-9-]*)?\s*>/.exec(rest);
        if (close === null) throw failAt('Unclosed end tag', i);
        const open = stack.pop();
        if (open === undefined) throw failAt('Unexpected end tag', i);
        const name = close[1]?.toLowerCase();
        if (name !== undefined && name !== open.tag)
          throw failAt(`Unmatched end tag, expected "</${open.tag}>", found "</${name}>"`, i);
        const parent = stack.at(-1);
        const length = text.length - open.offset;
        if (open.tag === 'code' && parent?.tag === 'pre' && open.language !== undefined)
          parent.language = open.language;
        else if (length > 0) {
          const entity: FakeEntity = {
            type: HTML_ENTITY_TYPES[open.tag] as string,
            offset: open.offset,
            length,
          };
          if (open.tag === 'pre' && open.language !== undefined) entity.language = open.language;
          if (open.tag === 'a' && open.attrs.href !== undefined) entity.url = open.attrs.href;
          entities.push(entity);
        }
        i += close[0].length;
        continue;
      }
      const tag =
        /^<([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>"']+))?)*)\s*>/.exec(
          rest,
        );
      if (tag === null) throw failAt(`Unsupported start tag "${/^<([^\s>]*)/.exec(rest)?.[1] ?? ''}"`, i);
      const name = (tag[1] as string).toLowerCase();
      if (!(name in HTML_ENTITY_TYPES)) throw failAt(`Unsupported start tag "${name}"`, i);
      const attrs: Record<string, string> = {};
      for (const a of (tag[2] ?? '').matchAll(/([A-Za-z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g))
        attrs[(a[1] as string).toLowerCase()] = decodeEntities(a[2] ?? a[3] ?? a[4] ?? '');
      if (name === 'span' && attrs.class !== 'tg-spoiler') throw failAt('Unsupported start tag "span"', i);
      const entry: (typeof stack)[number] = { tag: name, offset: text.length, attrs };
      if (name === 'code' && attrs.class?.startsWith('language-')) entry.language = attrs.class.slice(9);
      stack.push(entry);
      i += tag[0].length;
      continue;
    }
    if (c === '&') {
      const ref = /^&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});/.exec(html.slice(i, i + 12));
      if (ref !== null) {
        text += decodeEntities(ref[0]);
        i += ref[0].length;
        continue;
      }
    }
    text += c;
    i += 1;
  }
  const unclosed = stack.pop();
  if (unclosed !== undefined)
    throw badRequest(`can't parse entities: Can't find end tag corresponding to start tag "${unclosed.tag}"`);
  return { text, entities: entities.sort((a, b) => a.offset - b.offset) };
}

function decodeEntities(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g, (_, ref: string) => {
    if (ref === 'lt') return '<';
    if (ref === 'gt') return '>';
    if (ref === 'amp') return '&';
    if (ref === 'quot') return '"';
    return String.fromCodePoint(ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1)));
  });
}

/** Telegram strips leading and trailing whitespace from a message; entities move with the text. */
function trim(parsed: { text: string; entities: FakeEntity[] }): { text: string; entities: FakeEntity[] } {
  const lead = parsed.text.length - parsed.text.trimStart().length;
  const text = parsed.text.trim();
  const entities = parsed.entities
    .map((e) => {
      const start = Math.max(0, e.offset - lead);
      const end = Math.min(text.length, e.offset - lead + e.length);
      return { ...e, offset: start, length: end - start };
    })
    .filter((e) => e.length > 0);
  return { text, entities };
}
