import { EventEmitter } from 'node:events';
import { secretScrubber } from '../../logger.js';
import { isVaultError, type VaultClient } from './vault-client.js';
import { envSetsExplicitly, isSecretEnvName } from './vault-settings.js';

/** The part of a pino logger the source uses; fields never hold a secret value. */
export interface VaultLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  info?(fields: Record<string, unknown>, message: string): void;
}

export interface VaultSecretSourceOptions {
  client: Pick<VaultClient, 'readKv' | 'addr'>;
  mount: string;
  path: string;
  /** How often `start()` reads the secret again; 0: never. */
  refreshMs: number;
  /**
   * The process environment. A name it sets itself (or through `NAME_FILE`) wins over Vault:
   * the source neither serves nor merges it.
   */
  env: NodeJS.ProcessEnv;
  logger?: VaultLogger;
}

export interface VaultSecretSourceEvents {
  /** Names (never values) whose value appeared, changed or disappeared in a refresh. */
  changed: [names: string[]];
  /** A refresh failed; the last values read stay in use. */
  refreshFailed: [error: Error];
}

/**
 * The agent's secrets held in one Vault KV v2 secret, read again every `refreshMs` so a rotated
 * key is used without a restart. Keys of the secret are the agent's env names
 * (`OPENAI_API_KEY`, `TELEGRAM_BOT_TOKEN`, `PROVIDER_DEEPSEEK_API_KEY`, ...); a key that is not
 * one of its secrets is ignored with a warning naming it.
 */
export class VaultSecretSource extends EventEmitter<VaultSecretSourceEvents> {
  readonly mount: string;
  readonly path: string;
  readonly refreshMs: number;
  private readonly client: Pick<VaultClient, 'readKv' | 'addr'>;
  private readonly env: NodeJS.ProcessEnv;
  private logger: VaultLogger | undefined;
  private current = new Map<string, string>();
  /** Every value ever served, so a key rotated out is still cut from logs written later. */
  private readonly everSeen = new Set<string>();
  private readonly warnedIgnored = new Set<string>();
  private readonly warnedOverridden = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<string[]> | undefined;
  private loaded = false;
  private versionRead: number | undefined;

  constructor(options: VaultSecretSourceOptions) {
    super();
    this.client = options.client;
    this.mount = options.mount;
    this.path = options.path;
    this.refreshMs = options.refreshMs;
    this.env = options.env;
    this.logger = options.logger;
  }

  /** Sends the source's warnings to `logger` from now on (the agent's, once it exists). */
  useLogger(logger: VaultLogger): void {
    this.logger = logger;
  }

  /** The current value of a secret env name that Vault supplies, or undefined. */
  get(name: string): string | undefined {
    return this.current.get(name);
  }

  /** The names Vault supplies now (explicit env variables and unknown keys excluded). */
  names(): string[] {
    return [...this.current.keys()].sort();
  }

  /** The KV version last read. */
  get version(): number | undefined {
    return this.versionRead;
  }

  /** Every value this source has served, current and rotated out: for the secret scrubbers. */
  secretValues(): string[] {
    return [...this.everSeen];
  }

  /** `env` with the Vault values added; an explicit env variable is kept as it is. */
  mergeInto(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const merged: NodeJS.ProcessEnv = { ...env };
    for (const [name, value] of this.current) {
      if (!envSetsExplicitly(env, name)) merged[name] = value;
    }
    return merged;
  }

  /**
   * Reads the secret now; resolves with the names that changed (emitted as `changed` too, except
   * on the first read). Throws a `VaultError` when Vault cannot be read; the values held stay.
   */
  refresh(): Promise<string[]> {
    this.inFlight ??= this.read().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Refreshes every `refreshMs` until `stop()`; the timer does not keep the process alive. */
  start(): void {
    if (this.timer || this.refreshMs <= 0) return;
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) => {
        const err = error instanceof Error ? error : new Error(String(error));
        this.logger?.warn(
          {
            addr: this.client.addr,
            secret: `${this.mount}/${this.path}`,
            code: isVaultError(err) ? err.code : undefined,
            err: err.message,
          },
          'vault: refresh failed; the secrets read before stay in use',
        );
        this.emit('refreshFailed', err);
      });
    }, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async read(): Promise<string[]> {
    const secret = await this.client.readKv(this.mount, this.path);
    const next = new Map<string, string>();
    const ignored: string[] = [];
    const notText: string[] = [];
    const overridden: string[] = [];
    for (const [name, raw] of Object.entries(secret.data)) {
      if (!isSecretEnvName(name)) {
        if (!this.warnedIgnored.has(name)) ignored.push(name);
        continue;
      }
      if (envSetsExplicitly(this.env, name)) {
        if (!this.warnedOverridden.has(name)) overridden.push(name);
        continue;
      }
      const value = typeof raw === 'string' ? raw : typeof raw === 'number' ? String(raw) : undefined;
      if (value === undefined || value === '') {
        if (!this.warnedIgnored.has(name)) notText.push(name);
        continue;
      }
      next.set(name, value);
    }
    for (const name of [...ignored, ...notText]) this.warnedIgnored.add(name);
    for (const name of overridden) this.warnedOverridden.add(name);
    const where = { addr: this.client.addr, secret: `${this.mount}/${this.path}` };
    if (ignored.length > 0) {
      this.logger?.warn(
        { ...where, keys: ignored.sort() },
        'vault: ignoring keys that are not secret env names of the agent (e.g. OPENAI_API_KEY, TELEGRAM_BOT_TOKEN, PROVIDER_<ID>_API_KEY)',
      );
    }
    if (notText.length > 0) {
      this.logger?.warn(
        { ...where, keys: notText.sort() },
        'vault: ignoring keys whose value is empty or not text',
      );
    }
    if (overridden.length > 0) {
      this.logger?.info?.(
        { ...where, keys: overridden.sort() },
        'vault: these keys are also set in the environment; the environment wins',
      );
    }

    const changed = [...new Set([...this.current.keys(), ...next.keys()])]
      .filter((name) => this.current.get(name) !== next.get(name))
      .sort();
    const first = !this.loaded;
    this.current = next;
    this.loaded = true;
    this.versionRead = secret.version;
    for (const value of next.values()) this.everSeen.add(value);
    if (!first && changed.length > 0) {
      this.logger?.info?.({ ...where, version: secret.version, keys: changed }, 'vault: secrets changed');
      this.emit('changed', changed);
    }
    return first ? [] : changed;
  }
}

/** Where rotated secrets come from: Vault, or the config loaded again (`SecretRotation`). */
export interface RotatingSecretValues {
  /** Every value served so far, current and rotated out. */
  secretValues(): string[];
  on(event: 'changed', listener: () => void): unknown;
}

/**
 * A scrubber (see `secretScrubber`) over `base` plus every value the sources have served, rebuilt
 * when one changes, so a rotated key is redacted too (and the old one still is).
 */
export function rotatingScrubber(
  base: readonly string[],
  sources: readonly RotatingSecretValues[],
  make: (secrets: readonly string[]) => (text: string) => string = (secrets) => secretScrubber(secrets),
): (text: string) => string {
  const build = () => make([...new Set([...base, ...sources.flatMap((s) => s.secretValues())])]);
  let scrub = build();
  for (const source of sources) {
    source.on('changed', () => {
      scrub = build();
    });
  }
  return (text) => scrub(text);
}
