/**
 * A small HashiCorp Vault client over plain HTTP: reads one KV v2 secret, authenticated by a
 * token or by AppRole. No SDK: the two calls it makes are stable and documented.
 *
 * Error messages name the address, the mount and the path, never a token, a secret id or a
 * secret value.
 */

export type VaultErrorCode = 'vault_unreachable' | 'vault_denied' | 'vault_not_found' | 'vault_bad_response';

export class VaultError extends Error {
  readonly code: VaultErrorCode;
  /** The HTTP status Vault answered with, when it answered. */
  readonly status: number | undefined;

  constructor(code: VaultErrorCode, message: string, status?: number) {
    super(message);
    this.name = 'VaultError';
    this.code = code;
    this.status = status;
  }
}

export function isVaultError(error: unknown): error is VaultError {
  return error instanceof VaultError;
}

export type VaultAuth =
  | { kind: 'token'; token: string }
  | {
      kind: 'approle';
      roleId: string;
      secretId: string;
      /** Where the AppRole auth method is mounted; default `approle`. */
      mount?: string;
    };

export interface VaultClientOptions {
  /** e.g. `https://vault.internal:8200` */
  addr: string;
  auth: VaultAuth;
  /** Vault Enterprise namespace, sent as `X-Vault-Namespace`. */
  namespace?: string;
  /** Per request; default 5000 ms. */
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
  now?: () => number;
}

export interface KvSecret {
  /** The secret's key/value pairs, as stored (values are usually strings). */
  data: Record<string, unknown>;
  version: number | undefined;
}

interface AppRoleToken {
  token: string;
  /** When to log in again (before the lease runs out); Infinity for a token without expiry. */
  renewAt: number;
}

export class VaultClient {
  readonly addr: string;
  private readonly auth: VaultAuth;
  private readonly namespace: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly now: () => number;
  private appRoleToken: AppRoleToken | undefined;
  private loggingIn: Promise<string> | undefined;

  constructor(options: VaultClientOptions) {
    this.addr = options.addr.replace(/\/+$/, '');
    this.auth = options.auth;
    this.namespace = options.namespace;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.now = options.now ?? Date.now;
  }

  /** Reads the latest version of `{mount}/{path}` from the KV v2 engine. */
  async readKv(mount: string, path: string): Promise<KvSecret> {
    const where = `${trimSlashes(mount)}/${trimSlashes(path)}`;
    const url = `${this.addr}/v1/${trimSlashes(mount)}/data/${trimSlashes(path).split('/').map(encodeURIComponent).join('/')}`;
    let token = await this.token();
    let response = await this.request('GET', url, token, undefined, `reading ${where}`);
    if (response.status === 403 && this.auth.kind === 'approle') {
      // The AppRole token may have been revoked or have expired early: log in once more.
      this.appRoleToken = undefined;
      token = await this.token();
      response = await this.request('GET', url, token, undefined, `reading ${where}`);
    }
    const body = await this.readBody(response, `reading ${where}`);
    if (response.status === 404) {
      throw new VaultError(
        'vault_not_found',
        `Vault at ${this.addr} has no secret ${where} (404); check VAULT_KV_MOUNT and VAULT_SECRET_PATH`,
        404,
      );
    }
    if (response.status === 403 || response.status === 401) {
      throw new VaultError(
        'vault_denied',
        `Vault at ${this.addr} denied reading ${where} (${response.status}${this.vaultErrors(body)}); check the token's policy allows read on ${trimSlashes(mount)}/data/${trimSlashes(path)}`,
        response.status,
      );
    }
    if (!response.ok) {
      throw new VaultError(
        response.status >= 500 ? 'vault_unreachable' : 'vault_bad_response',
        `Vault at ${this.addr} answered ${response.status} reading ${where}${this.vaultErrors(body)}`,
        response.status,
      );
    }
    const outer = (body as { data?: unknown } | undefined)?.data as
      | { data?: unknown; metadata?: { version?: unknown } }
      | undefined;
    if (!outer || typeof outer !== 'object' || !isPlainObject(outer.data)) {
      throw new VaultError(
        'vault_bad_response',
        `Vault at ${this.addr} answered reading ${where} without data.data; is ${trimSlashes(mount)} a KV version 2 mount?`,
        response.status,
      );
    }
    const version = outer.metadata?.version;
    return { data: outer.data, version: typeof version === 'number' ? version : undefined };
  }

  private async token(): Promise<string> {
    if (this.auth.kind === 'token') return this.auth.token;
    const current = this.appRoleToken;
    if (current && this.now() < current.renewAt) return current.token;
    // One login at a time, whatever the number of concurrent reads.
    this.loggingIn ??= this.login().finally(() => {
      this.loggingIn = undefined;
    });
    return this.loggingIn;
  }

  private async login(): Promise<string> {
    if (this.auth.kind !== 'approle') throw new Error('not an AppRole client');
    const mount = trimSlashes(this.auth.mount ?? 'approle');
    const response = await this.request(
      'POST',
      `${this.addr}/v1/auth/${mount}/login`,
      undefined,
      JSON.stringify({ role_id: this.auth.roleId, secret_id: this.auth.secretId }),
      'logging in with AppRole',
    );
    const body = await this.readBody(response, 'logging in with AppRole');
    if (response.status === 400 || response.status === 401 || response.status === 403) {
      throw new VaultError(
        'vault_denied',
        `Vault at ${this.addr} refused the AppRole login (${response.status}${this.vaultErrors(body)}); check VAULT_ROLE_ID and VAULT_SECRET_ID (a secret id may have expired or been used up)`,
        response.status,
      );
    }
    if (!response.ok) {
      throw new VaultError(
        response.status >= 500 ? 'vault_unreachable' : 'vault_bad_response',
        `Vault at ${this.addr} answered ${response.status} to the AppRole login${this.vaultErrors(body)}`,
        response.status,
      );
    }
    const auth = (body as { auth?: { client_token?: unknown; lease_duration?: unknown } } | undefined)?.auth;
    if (!auth || typeof auth.client_token !== 'string' || auth.client_token === '') {
      throw new VaultError(
        'vault_bad_response',
        `Vault at ${this.addr} answered the AppRole login without auth.client_token`,
        response.status,
      );
    }
    const leaseSeconds = typeof auth.lease_duration === 'number' ? auth.lease_duration : 0;
    // Log in again after 80% of the lease, so a read never goes out with an expired token.
    const renewAt = leaseSeconds > 0 ? this.now() + leaseSeconds * 800 : Number.POSITIVE_INFINITY;
    this.appRoleToken = { token: auth.client_token, renewAt };
    return auth.client_token;
  }

  private async request(
    method: 'GET' | 'POST',
    url: string,
    token: string | undefined,
    body: string | undefined,
    doing: string,
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token !== undefined) headers['x-vault-token'] = token;
    if (this.namespace) headers['x-vault-namespace'] = this.namespace;
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await this.fetchImpl(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new VaultError(
        'vault_unreachable',
        `Vault at ${this.addr} is unreachable ${doing} (${describeNetworkError(error)})`,
      );
    }
  }

  private async readBody(response: Response, doing: string): Promise<unknown> {
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new VaultError(
        'vault_unreachable',
        `Vault at ${this.addr} broke off its answer ${doing} (${describeNetworkError(error)})`,
        response.status,
      );
    }
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      if (!response.ok) return undefined;
      throw new VaultError(
        'vault_bad_response',
        `Vault at ${this.addr} answered ${doing} with something that is not JSON; is VAULT_ADDR the Vault API address?`,
        response.status,
      );
    }
  }

  /** Vault's own `errors` list, for the message, with every credential this client holds cut out. */
  private vaultErrors(body: unknown): string {
    const errors = (body as { errors?: unknown } | undefined)?.errors;
    if (!Array.isArray(errors) || errors.length === 0) return '';
    let text = errors
      .filter((e): e is string => typeof e === 'string')
      .join('; ')
      .replace(/\s+/g, ' ')
      .trim();
    for (const credential of this.credentials()) {
      if (credential.length > 0) text = text.split(credential).join('[redacted]');
    }
    if (text === '') return '';
    return `: ${text.length > 200 ? `${text.slice(0, 197)}...` : text}`;
  }

  private credentials(): string[] {
    const out = this.auth.kind === 'token' ? [this.auth.token] : [this.auth.roleId, this.auth.secretId];
    if (this.appRoleToken) out.push(this.appRoleToken.token);
    return out;
  }
}

function trimSlashes(text: string): string {
  return text.replace(/^\/+|\/+$/g, '');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `ECONNREFUSED`, `timed out`, ...: the cause of a failed fetch, without its URL or headers. */
function describeNetworkError(error: unknown): string {
  const e = error as { name?: string; code?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  const code = e?.cause?.code ?? e?.code;
  if (typeof code === 'string') return code;
  return e?.cause?.message ?? (error as Error)?.message ?? String(error);
}
