/**
 * A URL as the doctor may print it: scheme, host and port only. User info, paths and queries are
 * dropped, because RPC and API providers put keys there (`?api-key=`, `/<token>/`).
 */
export function safeOrigin(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return '(an unparsable URL)';
  }
}

/** Replaces every non-empty secret in `text` with `[secret]`. */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('[secret]');
  return out;
}

/** The network error's code (ECONNREFUSED, ETIMEDOUT...) from an error or its causes, if any. */
export function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth += 1) {
    const { code, name } = current as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
    if (name === 'TimeoutError' || name === 'AbortError') return 'timed out';
    const next = current as { cause?: unknown; error?: unknown; original?: unknown };
    current = next.cause ?? next.error ?? next.original;
  }
  return undefined;
}
