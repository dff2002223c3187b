/**
 * Masks secrets in text bound for logs and health (`lastError` is served by the API). Neither
 * discord.js nor the REST client put the token in their messages today; this keeps it that way
 * for the tokens the adapter held, old ones included, whatever a future version writes.
 */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join('[redacted]');
  }
  return out;
}
