/**
 * Every error the agent raises on purpose carries a stable `code`. The HTTP channel maps codes to
 * status codes through `HTTP_STATUS_BY_CODE`; anything without a code is an `internal_error`.
 */
export const ERROR_CODES = {
  bad_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  not_found: 404,
  event_in_progress: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  budget_exceeded: 429,
  internal_error: 500,
  provider_unavailable: 502,
  provider_not_configured: 503,
  shutting_down: 503,
  memory_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AgentError extends Error {
  readonly isAgentError = true;
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.details = options?.details;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }
}

export function isAgentError(error: unknown): error is AgentError {
  return (
    typeof error === 'object' && error !== null && (error as { isAgentError?: unknown }).isAgentError === true
  );
}
