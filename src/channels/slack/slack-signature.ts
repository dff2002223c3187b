import { verifySlackRequest } from '@slack/bolt';

export interface SignedRequest {
  rawBody: string;
  /** `x-slack-request-timestamp`: Unix seconds, as Slack put it in the signed base string. */
  timestamp: string | string[] | undefined;
  /** `x-slack-signature`: `v0=` + hex HMAC-SHA256. */
  signature: string | string[] | undefined;
}

/**
 * Checks a request the way Slack signs it (`v0=` + hex HMAC-SHA256 of `v0:${ts}:${rawBody}` with
 * the signing secret, compared in constant time; older than five minutes is refused), using
 * Bolt's own `verifySlackRequest` so the rule stays Slack's. Returns why it failed, or undefined.
 */
export function signatureProblem(
  request: SignedRequest,
  signingSecret: string,
  nowMs: number,
): string | undefined {
  const { timestamp, signature } = request;
  if (typeof timestamp !== 'string' || typeof signature !== 'string') {
    return 'missing x-slack-request-timestamp or x-slack-signature';
  }
  // Bolt turns the header into a number before signing it again: "0123" would sign as "123" and
  // fail anyway, but a clear reason beats "signature mismatch".
  if (!/^\d{1,12}$/.test(timestamp)) return 'x-slack-request-timestamp is not Unix seconds';
  try {
    verifySlackRequest({
      signingSecret,
      body: request.rawBody,
      headers: { 'x-slack-request-timestamp': Number(timestamp), 'x-slack-signature': signature },
      nowMilliseconds: nowMs,
    });
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
