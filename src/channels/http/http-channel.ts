import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import rateLimit from '@fastify/rate-limit';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AgentConfig } from '../../core/config/schema.js';
import { AgentError } from '../../core/errors.js';
import { lazyChild } from '../../core/logger.js';
import { type Pipeline, turnId } from '../../core/pipeline.js';
import type { ChannelHealth } from '../channel-adapter.js';
import { createTokenCheck, tokenFingerprint } from './auth.js';
import { sendError, toErrorResponse } from './error-handler.js';

export interface HttpChannelOptions {
  config: Readonly<AgentConfig['http']>;
  pipeline: Pipeline;
  logger: Logger;
  /** Throws when a dependency does not answer; feeds `/readyz`. */
  readiness: () => Promise<Record<string, string>>;
  history: (personId: string, limit: number) => Promise<{ user: string; assistant: string; at: number }[]>;
  status: () => unknown;
  /** More authenticated, rate-limited routes (the OpenAI-compatible endpoint). */
  routes?: (api: FastifyInstance) => void;
  /** Platform webhooks (Telegram, Slack), each verifying its own signature; no bearer auth. */
  webhooks?: readonly FastifyPluginAsync[];
}

const conversationParams = z.object({ conversationId: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/) });
const messageBody = z
  .object({
    text: z.string().min(1).max(1_000_000),
    /** Idempotency key: the same id is answered once, and a retry gets the same reply. */
    eventId: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,128}$/)
      .optional(),
  })
  .strict();
const historyQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) });

const PUBLIC_FILES: Record<string, string> = {
  '/': 'index.html',
  '/chat.js': 'chat.js',
  '/chat.css': 'chat.css',
  '/dashboard': 'dashboard.html',
  '/dashboard.js': 'dashboard.js',
  '/dashboard.css': 'dashboard.css',
  '/api-token.js': 'api-token.js',
  '/common.css': 'common.css',
};
const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/**
 * The HTTP channel: a JSON API (plain and SSE), the web chat page, and health endpoints, on one
 * fastify instance that later channels (webhooks) and the gateway's OpenAI-compatible endpoint
 * mount on too.
 *
 * Not a `ChannelAdapter`: HTTP answers in the response to the request (or its SSE stream), so its
 * replies never go through the outbox. It also owns the server that webhook-mode platform
 * adapters (Telegram, Slack) mount their routes on.
 */
export class HttpChannel {
  readonly name = 'http';
  readonly app: FastifyInstance;
  private readonly state: ChannelHealth = { connected: false, consecutiveSendFailures: 0 };
  private isValidToken: (header: string | undefined) => boolean;
  /** The bearer tokens the API accepts now: the config's, until a rotation replaces them. */
  private authTokens: readonly string[];
  private readonly publicFiles: Map<string, { body: Buffer; type: string }>;

  constructor(private readonly options: HttpChannelOptions) {
    this.authTokens = options.config.authTokens;
    this.isValidToken = createTokenCheck(this.authTokens);
    this.publicFiles = loadPublicFiles();
    this.app = Fastify({
      loggerInstance: options.logger.child({ channel: 'http' }) as FastifyBaseLogger,
      bodyLimit: options.config.bodyLimitBytes,
      // One log line per turn comes from the pipeline; a line per request would double it.
      logController: new LogController({ disableRequestLogging: true }),
      childLoggerFactory: (logger, bindings, options) => lazyChild(logger as Logger, bindings, options),
      genReqId: () => randomUUID(),
      // Keep-alive clients (the web page, load balancers) reuse connections.
      keepAliveTimeout: 30_000,
    });
    this.registerRoutes();
  }

  health(): ChannelHealth {
    return { ...this.state };
  }

  /**
   * Takes a rotated `HTTP_AUTH_TOKENS` list at once: a token left out of it is refused from the next
   * request (rotate by adding the new token first, then removing the old). An API that had tokens
   * never becomes open: an empty list is refused and the tokens in use stay.
   */
  setAuthTokens(tokens: readonly string[]): boolean {
    if (tokens.length === 0 && this.authTokens.length > 0) return false;
    this.authTokens = [...tokens];
    this.isValidToken = createTokenCheck(this.authTokens);
    return true;
  }

  /** The first accepted token: the one this node presents to its peers. */
  get meshToken(): string | undefined {
    return this.authTokens[0];
  }

  /** Resolves with the bound address once listening. */
  async start(): Promise<void> {
    await this.app.listen({ host: this.options.config.host, port: this.options.config.port });
    this.state.connected = true;
  }

  get url(): string {
    const address = this.app.server.address();
    if (address === null || typeof address === 'string') throw new Error('the HTTP channel is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  async stop(): Promise<void> {
    this.state.connected = false;
    await this.app.close();
  }

  private registerRoutes(): void {
    const app = this.app;
    app.setErrorHandler((error, request, reply) => sendError(reply, request, error));
    app.setNotFoundHandler((request, reply) =>
      sendError(
        reply,
        request,
        new AgentError('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`),
      ),
    );

    // The API speaks JSON only; anything else is a clear 415 rather than a confusing 400.
    app.removeContentTypeParser('text/plain');
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_request, reply) => {
      try {
        return { status: 'ready', checks: await this.options.readiness() };
      } catch (error) {
        return reply.status(503).send({
          status: 'not_ready',
          error: { code: 'not_ready', message: String((error as Error).message) },
        });
      }
    });
    for (const [path, name] of Object.entries(PUBLIC_FILES)) {
      app.get(path, async (_request, reply) => {
        const file = this.publicFiles.get(name) as { body: Buffer; type: string };
        return reply.type(file.type).header('cache-control', 'no-cache').send(file.body);
      });
    }

    for (const webhook of this.options.webhooks ?? []) app.register(webhook);

    app.register(async (api) => {
      await api.register(rateLimit, {
        max: this.options.config.rateLimit.max,
        timeWindow: this.options.config.rateLimit.windowMs,
        keyGenerator: (request) => {
          const header = request.headers.authorization;
          return header ? `token:${tokenFingerprint(header)}` : `ip:${request.ip}`;
        },
        errorResponseBuilder: (_request, context) =>
          new AgentError('rate_limited', `rate limit exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`),
      });
      api.addHook('onRequest', async (request) => {
        if (this.authTokens.length === 0) return;
        if (!this.isValidToken(request.headers.authorization)) {
          throw new AgentError(
            'unauthorized',
            'missing or invalid bearer token (Authorization: Bearer <token>)',
          );
        }
      });

      api.get('/api/status', async () => this.options.status());
      this.options.routes?.(api);

      api.get('/api/conversations/:conversationId/messages', async (request) => {
        const { conversationId } = parse(conversationParams, request.params);
        const { limit } = parse(historyQuery, request.query);
        const turns = await this.options.history(`http:${conversationId}`, limit);
        return { conversationId, turns };
      });

      api.post('/api/conversations/:conversationId/messages', async (request) => {
        const { conversationId, body } = this.parseMessage(request);
        const reply = await this.handle(request, conversationId, body);
        return {
          conversationId,
          eventId: reply.eventId,
          reply: { text: reply.text },
          duplicate: reply.duplicate,
        };
      });

      api.post('/api/conversations/:conversationId/messages/stream', async (request, reply) => {
        const { conversationId, body } = this.parseMessage(request);
        return this.stream(request, reply, conversationId, body);
      });
    });
  }

  private parseMessage(request: FastifyRequest) {
    const { conversationId } = parse(conversationParams, request.params);
    return { conversationId, body: parse(messageBody, request.body) };
  }

  private async handle(
    request: FastifyRequest,
    conversationId: string,
    body: z.infer<typeof messageBody>,
    extra: { onText?: (text: string) => void; signal?: AbortSignal } = {},
  ) {
    const eventId = body.eventId ?? randomUUID();
    this.state.lastEventAt = Date.now();
    // The request's logger carries fastify's `reqId`; `turn` ties it to the turn's other lines.
    const logger = request.log.child({ turn: turnId('http', eventId) }) as Logger;
    logger.debug({ user: conversationId }, 'message received');
    const reply = await this.options.pipeline.handle(
      { channel: 'http', eventId, userId: conversationId, text: body.text },
      { ...extra, logger },
    );
    this.state.lastSendAt = Date.now();
    return { ...reply, eventId };
  }

  /** Server-sent events: `delta` for each piece of text, then `done` or `error`. */
  private async stream(
    request: FastifyRequest,
    reply: FastifyReply,
    conversationId: string,
    body: z.infer<typeof messageBody>,
  ): Promise<void> {
    const abort = new AbortController();
    // A person who closes the page stops the turn; nothing was answered, so nothing is stored.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const send = (event: string, data: unknown) =>
      reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    try {
      const result = await this.handle(request, conversationId, body, {
        onText: (text) => send('delta', { text }),
        signal: abort.signal,
      });
      send('done', {
        conversationId,
        eventId: result.eventId,
        reply: { text: result.text },
        duplicate: result.duplicate,
      });
    } catch (error) {
      const { body: errorBody } = toErrorResponse(error);
      if (errorBody.error.code === 'internal_error') request.log.error({ err: error }, 'stream failed');
      send('error', errorBody);
    }
    reply.raw.end();
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'body';
    throw new AgentError('bad_request', `${where}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

function loadPublicFiles(): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of new Set(Object.values(PUBLIC_FILES))) {
    const body = readFileSync(new URL(`./public/${name}`, import.meta.url));
    files.set(name, { body, type: CONTENT_TYPES[name.split('.').pop() as string] as string });
  }
  return files;
}
