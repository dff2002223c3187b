import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { COMMAND_NOT_TAKEN } from './slack-events.js';
import {
  type EventCallback,
  eventCallbackSchema,
  type SlashCommand,
  slashCommandSchema,
  urlVerificationSchema,
} from './slack-payloads.js';
import { signatureProblem } from './slack-signature.js';

export interface SlackWebhookOptions {
  eventsPath: string;
  commandsPath: string;
  /**
   * The secrets a request may be signed with right now, current first: read on every request, so
   * a rotated signing secret applies at once (and the one it replaced during its grace period).
   */
  signingSecrets: () => readonly string[];
  now: () => number;
  logger: Logger;
  /** False until the adapter has a sink (and after stop): events get 503 so Slack retries them. */
  ready: () => boolean;
  /** Resolves once the agent has accepted the event (or it was not for the agent); throws otherwise. */
  onEvent: (body: EventCallback) => Promise<void>;
  /** Resolves once the agent has accepted the command; throws otherwise. */
  onCommand: (command: SlashCommand) => Promise<void>;
}

const typed = z.looseObject({ type: z.string() });

/**
 * The Events API and slash-command routes, in their own encapsulated plugin: the signature is
 * over the exact bytes Slack sent, so this plugin parses JSON and forms as raw strings (without
 * touching the parsers of the rest of the server) and verifies before reading anything.
 *
 * Slack is acknowledged only after the agent has accepted the event: a 500 makes Slack retry,
 * with the same `event_id`, which the agent's dedupe recognises.
 */
export function slackWebhook(options: SlackWebhookOptions): FastifyPluginAsync {
  return async (app) => {
    app.removeContentTypeParser(['application/json', 'application/x-www-form-urlencoded']);
    app.addContentTypeParser(
      ['application/json', 'application/x-www-form-urlencoded'],
      { parseAs: 'string' },
      (_request, body, done) => done(null, body),
    );

    const verified = (rawBody: string, headers: Record<string, string | string[] | undefined>) =>
      signatureProblem(
        {
          rawBody,
          timestamp: headers['x-slack-request-timestamp'],
          signature: headers['x-slack-signature'],
        },
        options.signingSecrets(),
        options.now(),
      );

    app.post(options.eventsPath, async (request, reply) => {
      const rawBody = typeof request.body === 'string' ? request.body : '';
      const problem = verified(rawBody, request.headers);
      if (problem !== undefined) return refuse(reply, problem, options.logger);

      const json = parseJson(rawBody);
      const envelope = typed.safeParse(json);
      if (!envelope.success) return badRequest(reply, 'the body is not a Slack event envelope');

      if (envelope.data.type === 'url_verification') {
        const check = urlVerificationSchema.safeParse(json);
        if (!check.success) return badRequest(reply, 'url_verification without a challenge');
        return reply.send({ challenge: check.data.challenge });
      }
      // app_rate_limited and future envelope types: nothing to do, and no reason to be retried.
      if (envelope.data.type !== 'event_callback') return reply.code(200).send();

      const callback = eventCallbackSchema.safeParse(json);
      if (!callback.success) return badRequest(reply, 'event_callback without event_id or event');
      if (!options.ready()) return unavailable(reply);
      try {
        await options.onEvent(callback.data);
      } catch (error) {
        options.logger.warn(
          { err: error, eventId: callback.data.event_id, retry: request.headers['x-slack-retry-num'] },
          'slack event not accepted; Slack will retry',
        );
        return reply
          .code(500)
          .send({ error: { code: 'not_accepted', message: 'the event was not accepted; retry' } });
      }
      return reply.code(200).send();
    });

    app.post(options.commandsPath, async (request, reply) => {
      const rawBody = typeof request.body === 'string' ? request.body : '';
      const problem = verified(rawBody, request.headers);
      if (problem !== undefined) return refuse(reply, problem, options.logger);

      const command = slashCommandSchema.safeParse(Object.fromEntries(new URLSearchParams(rawBody)));
      if (!command.success) return badRequest(reply, 'not a slash command payload');
      if (!options.ready()) return reply.code(200).send(COMMAND_NOT_TAKEN);
      try {
        await options.onCommand(command.data);
      } catch (error) {
        options.logger.warn({ err: error, command: command.data.command }, 'slack command not accepted');
        return reply.code(200).send(COMMAND_NOT_TAKEN);
      }
      // An empty 200 acknowledges without posting anything; the answer follows via chat.postMessage.
      return reply.code(200).send();
    });
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function refuse(reply: FastifyReply, problem: string, logger: Logger): FastifyReply {
  // Not an error of ours: a misconfigured secret, a replay or a stranger. Warn so the first is seen.
  logger.warn({ problem }, 'slack request refused: bad signature');
  return reply
    .code(401)
    .send({ error: { code: 'bad_signature', message: `Slack signature check failed: ${problem}` } });
}

function badRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ error: { code: 'bad_request', message } });
}

function unavailable(reply: FastifyReply): FastifyReply {
  return reply
    .code(503)
    .send({ error: { code: 'not_ready', message: 'the Slack channel is not started; retry' } });
}
