import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeVaultOptions {
  /** Tokens that may read every secret. */
  tokens?: string[];
  /** AppRole credentials that may log in (mount `approle`). */
  appRoles?: { roleId: string; secretId: string }[];
  /** `auth.lease_duration` of an AppRole token, in seconds; default 3600. */
  leaseSeconds?: number;
  /** KV v2 mounts; default `['secret']`. */
  mounts?: string[];
}

export interface VaultRequestRecord {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  status: number;
}

export interface FakeVault {
  /** For VAULT_ADDR. */
  addr: string;
  /** Every request received. */
  requests: VaultRequestRecord[];
  /** AppRole logins that succeeded. */
  readonly logins: number;
  /** Tokens issued by AppRole logins, oldest first. */
  issuedTokens: string[];
  /** Writes a whole secret (a new version), as `vault kv put` does. */
  put(mount: string, path: string, data: Record<string, unknown>): number;
  /** Changes one key of a secret (a new version), as `vault kv patch` does; returns the version. */
  rotate(mount: string, path: string, key: string, value: string): number;
  /** Revokes a token: requests with it get 403 from now on. */
  revoke(token: string): void;
  close(): Promise<void>;
}

interface Stored {
  data: Record<string, unknown>;
  version: number;
}

/**
 * A local server speaking the part of Vault's HTTP API the agent uses: KV v2 reads
 * (`GET /v1/{mount}/data/{path}`), AppRole login (`POST /v1/auth/approle/login`) and token checks
 * (403 `permission denied` for an unknown, revoked or expired token).
 */
export async function startFakeVault(options: FakeVaultOptions = {}): Promise<FakeVault> {
  const tokens = new Map<string, number>(); // token -> expires at (ms), Infinity for static ones
  for (const token of options.tokens ?? []) tokens.set(token, Number.POSITIVE_INFINITY);
  const mounts = new Set(options.mounts ?? ['secret']);
  const secrets = new Map<string, Stored>();
  const requests: VaultRequestRecord[] = [];
  const issuedTokens: string[] = [];
  let logins = 0;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://fake').pathname;
      const send = (status: number, body: unknown) => {
        requests.push({ method: req.method ?? '', path, headers: req.headers, status });
        json(res, status, body);
      };
      if (req.method === 'POST' && path === '/v1/auth/approle/login') {
        let body: { role_id?: unknown; secret_id?: unknown };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        } catch {
          return send(400, { errors: ['failed to parse JSON input'] });
        }
        const match = (options.appRoles ?? []).find(
          (r) => r.roleId === body.role_id && r.secretId === body.secret_id,
        );
        if (!match) return send(400, { errors: ['invalid role or secret ID'] });
        logins += 1;
        const token = `hvs.approle-${logins}-${Math.random().toString(36).slice(2, 10)}`;
        const lease = options.leaseSeconds ?? 3600;
        tokens.set(token, Date.now() + lease * 1000);
        issuedTokens.push(token);
        return send(200, {
          auth: { client_token: token, lease_duration: lease, renewable: true, policies: ['agent'] },
        });
      }
      const kv = /^\/v1\/([^/]+)\/data\/(.+)$/.exec(path);
      if (req.method === 'GET' && kv) {
        const token = req.headers['x-vault-token'];
        const expiresAt = typeof token === 'string' ? tokens.get(token) : undefined;
        if (expiresAt === undefined || Date.now() >= expiresAt) {
          return send(403, { errors: ['permission denied'] });
        }
        const [, mount, secretPath] = kv as unknown as [string, string, string];
        if (!mounts.has(mount))
          return send(404, { errors: [`no handler for route "${mount}/data/${secretPath}"`] });
        const stored = secrets.get(`${mount}/${decodeURIComponent(secretPath)}`);
        if (!stored) return send(404, { errors: [] });
        return send(200, {
          request_id: 'fake',
          lease_duration: 0,
          renewable: false,
          data: {
            data: stored.data,
            metadata: {
              created_time: new Date().toISOString(),
              deletion_time: '',
              destroyed: false,
              version: stored.version,
            },
          },
        });
      }
      send(404, { errors: [] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    addr: `http://127.0.0.1:${port}`,
    requests,
    get logins() {
      return logins;
    },
    issuedTokens,
    put(mount, path, data) {
      const key = `${mount}/${path}`;
      const version = (secrets.get(key)?.version ?? 0) + 1;
      secrets.set(key, { data: { ...data }, version });
      return version;
    },
    rotate(mount, path, name, value) {
      const key = `${mount}/${path}`;
      const stored = secrets.get(key) ?? { data: {}, version: 0 };
      const version = stored.version + 1;
      secrets.set(key, { data: { ...stored.data, [name]: value }, version });
      return version;
    },
    revoke(token) {
      tokens.delete(token);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
