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
 *
 * `signingSecrets` holds more than one value only across a rotation (the current secret first,
 * then the one it replaced); a request signed with any of them passes. The reason returned is the
 * current secret's, since that is the one the operator is expected to have registered.
 */
export function signatureProblem(
  request: SignedRequest,
  signingSecrets: readonly string[],
  nowMs: number,
): string | undefined {
  const { timestamp, signature } = request;
  if (typeof timestamp !== 'string' || typeof signature !== 'string') {
    return 'missing x-slack-request-timestamp or x-slack-signature';
  }
  // Bolt turns the header into a number before signing it again: "0123" would sign as "123" and
  // fail anyway, but a clear reason beats "signature mismatch".
  if (!/^\d{1,12}$/.test(timestamp)) return 'x-slack-request-timestamp is not Unix seconds';
  if (signingSecrets.length === 0) return 'no signing secret is configured';
  let firstProblem: string | undefined;
  for (const signingSecret of signingSecrets) {
    // Bolt's messages name the check that failed (stale timestamp, mismatch), never the secret.
    const problem = verifiedWith(request.rawBody, Number(timestamp), signature, signingSecret, nowMs);
    if (problem === undefined) return undefined;
    firstProblem ??= problem;
  }
  return firstProblem;
}

function verifiedWith(
  body: string,
  timestamp: number,
  signature: string,
  signingSecret: string,
  nowMs: number,
): string | undefined {
  try {
    verifySlackRequest({
      signingSecret,
      body,
      headers: { 'x-slack-request-timestamp': timestamp, 'x-slack-signature': signature },
      nowMilliseconds: nowMs,
    });
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
