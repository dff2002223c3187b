import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ChannelName } from '../../channels/channel-adapter.js';
import type { ChannelsConfig } from '../../channels/channels-config.js';
import { isConfigError } from './config-error.js';
import { collectSecrets } from './load-config.js';
import type { AgentConfig } from './schema.js';

type WalletKey = AgentConfig['wallet']['key'];

/** What the wallet says of a rotated key (see `Wallet.renewKey`). */
export interface WalletKeyRenewal {
  outcome: 'renewed' | 'kept' | 'refused' | 'unchanged';
  reason?: string;
}

/** The parts of the agent that take rotated secrets while running. */
export interface SecretRotationTargets {
  /** The HTTP API's bearer tokens; false when the list was refused (empty). */
  httpTokens?(tokens: readonly string[]): boolean;
  /** The platform adapters; resolves with the platforms that could not take them. */
  channels?(channels: ChannelsConfig): Promise<{ channel: ChannelName; error: string }[]>;
  walletKey?(key: WalletKey): Promise<WalletKeyRenewal>;
}

/** One check: the config keys (never values) taken, kept back, or needing a restart. */
export interface RotationReport {
  taken: string[];
  failed: { key: string; error: string }[];
  restartNeeded: string[];
}

/**
 * Secrets rotated where they are kept (Vault, or a `NAME_FILE` a secret manager rewrites) reach the
 * running agent: `check()` loads the config again, and hands each secret that changed to the part
 * that uses it. Only secrets are taken; any other difference (an edited config file) waits for a
 * restart, so a rotation never half-applies a new configuration.
 *
 * `config` is the live config: the start-up config with every secret taken so far. Provider keys
 * are read from it per call, and new platform adapters are built from it.
 */
export class SecretRotation extends EventEmitter<{ changed: [] }> {
  private live: Readonly<AgentConfig>;
  private running: Promise<RotationReport> | undefined;
  private again = false;
  /** Every secret value of every config loaded, so the log scrubbers cut rotated-out ones too. */
  private readonly everSeen: Set<string>;
  private logger: Pick<Logger, 'info' | 'warn' | 'error'> | undefined;

  constructor(
    private readonly options: {
      initial: Readonly<AgentConfig>;
      /** Loads the config as at start-up (environment, `NAME_FILE` files, Vault's current values). */
      reload: () => Readonly<AgentConfig>;
      /** Filled in once the parts exist (the rotation is made before them, for the log scrubber). */
      targets: SecretRotationTargets;
      logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
    },
  ) {
    super();
    this.live = options.initial;
    this.logger = options.logger;
    this.everSeen = new Set(collectSecrets(options.initial));
  }

  /** Reports go to `logger` from now on (the agent's, once it exists). */
  useLogger(logger: Pick<Logger, 'info' | 'warn' | 'error'>): void {
    this.logger = logger;
  }

  /** Every secret value loaded so far: for the scrubbers. */
  secretValues(): string[] {
    return [...this.everSeen];
  }

  get config(): Readonly<AgentConfig> {
    return this.live;
  }

  /** The live API key of a provider (undefined when the provider has none). */
  providerKey(id: string): string | undefined {
    return this.live.providers.find((p) => p.id === id)?.apiKey;
  }

  /** Runs one check; a call while one runs is folded into one more check after it. */
  check(): Promise<RotationReport> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.checkOnce().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.check();
      }
    });
    return this.running;
  }

  private async checkOnce(): Promise<RotationReport> {
    const { targets } = this.options;
    const logger = this.logger ?? SILENT;
    const report: RotationReport = { taken: [], failed: [], restartNeeded: [] };
    let next: Readonly<AgentConfig>;
    try {
      next = this.options.reload();
    } catch (error) {
      // The message names the keys and masks secret values (ConfigError); the old secrets stay.
      const message = isConfigError(error) ? error.message : (error as Error).message;
      logger.error({ err: message }, 'rotated secrets not taken: the configuration no longer loads');
      report.failed.push({ key: 'config', error: message });
      return report;
    }
    // Scrubbed from the logs before anything can log them.
    const seen = this.everSeen.size;
    for (const secret of collectSecrets(next)) this.everSeen.add(secret);
    if (this.everSeen.size > seen) this.emit('changed');
    const before = this.live;
    const after = withSecretsOf(before, next);

    for (const key of RESTART_ONLY.filter((path) => differs(before, next, path))) {
      report.restartNeeded.push(key.join('.'));
    }
    for (const provider of before.providers) {
      const rotated = next.providers.find((p) => p.id === provider.id);
      if (rotated && rotated.apiKey !== provider.apiKey) report.taken.push(`providers.${provider.id}.apiKey`);
    }

    if (differs(before, after, ['http', 'authTokens'])) {
      if (targets.httpTokens?.(after.http.authTokens) === false) {
        report.failed.push({ key: 'http.authTokens', error: 'an empty token list would open the API' });
        (after.http as { authTokens: readonly string[] }).authTokens = before.http.authTokens;
      } else report.taken.push('http.authTokens');
    }

    const channelKeys = CHANNEL_SECRETS.filter((path) => differs(before, after, path)).map((p) =>
      p.join('.'),
    );
    if (channelKeys.length > 0) {
      // Published first: an adapter a lease creates from now on starts with the new secrets.
      this.live = after;
      const failures = (await targets.channels?.(after.channels)) ?? [];
      for (const key of channelKeys) {
        const failure = failures.find((f) => key.startsWith(`channels.${f.channel}.`));
        if (failure) report.failed.push({ key, error: failure.error });
        else report.taken.push(key);
      }
    }

    if (WALLET_SECRETS.some((path) => differs(before, after, path))) {
      const renewal = (await targets.walletKey?.(after.wallet.key)) ?? { outcome: 'unchanged' };
      if (renewal.outcome === 'renewed') report.taken.push('wallet.key');
      else if (renewal.outcome !== 'unchanged') {
        report.failed.push({ key: 'wallet.key', error: renewal.reason ?? renewal.outcome });
        // Not taken: the next check compares against the key in use and tries again.
        (after.wallet as { key: WalletKey }).key = before.wallet.key;
      }
    }

    this.live = after;
    if (report.taken.length > 0)
      logger.info({ keys: report.taken }, 'rotated secrets taken without a restart');
    for (const failure of report.failed)
      logger.warn(
        { key: failure.key, err: failure.error },
        'a rotated secret was not taken; the one in use stays',
      );
    if (report.restartNeeded.length > 0)
      logger.warn(
        { keys: report.restartNeeded },
        'these secrets changed but are used only when connecting at start: restart the agent to use them',
      );
    return report;
  }
}

type Path = readonly string[];

const SILENT = { info() {}, warn() {}, error() {} };

/** Platform secrets the adapters take while running (`ChannelAdapter.renewSecrets`). */
const CHANNEL_SECRETS: readonly Path[] = [
  ['channels', 'telegram', 'botToken'],
  ['channels', 'telegram', 'webhookSecret'],
  ['channels', 'discord', 'botToken'],
  ['channels', 'slack', 'botToken'],
  ['channels', 'slack', 'signingSecret'],
  ['channels', 'slack', 'appToken'],
];

const WALLET_SECRETS: readonly Path[] = [
  ['wallet', 'key', 'keystorePassphrase'],
  ['wallet', 'key', 'secretKey'],
];

/** Secrets of connections opened once at start: a change is reported, not taken. */
const RESTART_ONLY: readonly Path[] = [
  ['redis', 'url'],
  ['redis', 'password'],
  ['redis', 'sentinelPassword'],
];

/**
 * `base` with every rotatable secret of `next`: HTTP tokens, provider keys (matched by id),
 * platform secrets of the platforms `base` runs, and the wallet key's secrets. A new copy;
 * `base` is not changed.
 */
export function withSecretsOf(base: Readonly<AgentConfig>, next: Readonly<AgentConfig>): AgentConfig {
  const copy = structuredClone(base) as AgentConfig;
  (copy.http as { authTokens: readonly string[] }).authTokens = [...next.http.authTokens];
  for (const provider of copy.providers) {
    const rotated = next.providers.find((p) => p.id === provider.id);
    if (rotated) (provider as { apiKey?: string }).apiKey = rotated.apiKey;
  }
  for (const path of [...CHANNEL_SECRETS, ...WALLET_SECRETS]) {
    const parent = walk(copy, path.slice(0, -1));
    const source = walk(next, path.slice(0, -1));
    const leaf = path[path.length - 1] as string;
    if (!parent || !source) continue;
    if (source[leaf] === undefined) delete parent[leaf];
    else parent[leaf] = source[leaf];
  }
  return copy;
}

function walk(root: unknown, path: Path): Record<string, unknown> | undefined {
  let node: unknown = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node !== null && typeof node === 'object' ? (node as Record<string, unknown>) : undefined;
}

function differs(a: unknown, b: unknown, path: Path): boolean {
  const parentA = walk(a, path.slice(0, -1));
  const parentB = walk(b, path.slice(0, -1));
  const leaf = path[path.length - 1] as string;
  return JSON.stringify(parentA?.[leaf]) !== JSON.stringify(parentB?.[leaf]);
}
