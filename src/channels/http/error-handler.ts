import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AgentError, type ErrorCode, isAgentError } from '../../core/errors.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Maps any error to the API's JSON error shape with a stable code. */
export function toErrorResponse(error: unknown): { status: number; body: ErrorBody } {
  if (isAgentError(error)) {
    return { status: error.httpStatus, body: { error: { code: error.code, message: error.message } } };
  }
  const e = error as Partial<FastifyError> & { name?: string };
  const known: Record<string, [ErrorCode, string]> = {
    FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'the request body is larger than the configured limit'],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'send the body as application/json'],
    FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_json', 'the JSON body is empty'],
    FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_json', 'the body is not valid JSON'],
  };
  const mapped = e.code ? known[e.code] : undefined;
  if (mapped) return bodyFor(new AgentError(mapped[0], mapped[1]));
  if (e.statusCode === 400 && e.name === 'SyntaxError')
    return bodyFor(new AgentError('invalid_json', 'the body is not valid JSON'));
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return bodyFor(new AgentError('bad_request', e.message ?? 'bad request'));
  }
  return bodyFor(new AgentError('internal_error', 'internal error; see the agent log'));
}

function bodyFor(error: AgentError) {
  return toErrorResponse(error);
}

export function sendError(reply: FastifyReply, request: FastifyRequest, error: unknown): FastifyReply {
  const { status, body } = toErrorResponse(error);
  if (status >= 500 && !isAgentError(error)) request.log.error({ err: error }, 'unhandled error');
  return reply.status(status).type('application/json').send(body);
}
