import type { FastifyPluginAsync } from 'fastify';
import { matchesSecret, secretDigest } from '../secret-match.js';

/** The header Telegram sends the `secret_token` given to `setWebhook` in. */
export const SECRET_HEADER = 'x-telegram-bot-api-secret-token';

/** How the route hands an update on; `not_ready` asks Telegram to come back later (503). */
export type WebhookHandler = (update: unknown) => Promise<'handled' | 'not_ready'>;

/** The secrets a request may present (a `RotatingSecret`: the current one, and the one it replaced). */
export interface AcceptedSecrets {
  accepted(): readonly string[];
}

export interface WebhookRouteOptions {
  path: string;
  /** Read at every request, so a rotated secret applies without registering the route again. */
  secret: AcceptedSecrets;
  handle: WebhookHandler;
  onError(error: unknown): void;
}

/**
 * The webhook endpoint. A request without the right secret gets 401 before its body is looked
 * at. An update the agent could not accept gets 500 and is not acknowledged: Telegram redelivers
 * anything not answered with 2xx, with its own back-off. The body of a 200 is empty, because
 * Telegram would execute a JSON body carrying a `method` as an API call.
 */
export function telegramWebhookRoute(options: WebhookRouteOptions): FastifyPluginAsync {
  return async (app) => {
    // Checked on the request line and headers, before a forged request's body is even read. The
    // hook is scoped to this plugin, so it guards only this route.
    app.addHook('onRequest', async (request, reply) => {
      const presented = request.headers[SECRET_HEADER];
      if (
        typeof presented !== 'string' ||
        !matchesSecret(presented, options.secret.accepted().map(secretDigest))
      )
        return reply.code(401).send({ ok: false, error: 'unauthorized' });
    });
    app.post(options.path, async (request, reply) => {
      try {
        const outcome = await options.handle(request.body);
        if (outcome === 'not_ready') return reply.code(503).header('retry-after', '5').send();
        return reply.code(200).send();
      } catch (error) {
        options.onError(error);
        return reply.code(500).send({ ok: false, error: 'not accepted; send again' });
      }
    });
  };
}
