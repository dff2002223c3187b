/**
 * The environment variables that override the config file. One table, so `doctor`, the README
 * and error messages agree on the names. Secrets may also come from `NAME_FILE` (a path whose
 * content is the value), as Docker and Kubernetes mount them.
 */
export type EnvValueType = 'string' | 'integer' | 'boolean' | 'csv';

export interface EnvOverride {
  env: string;
  /** Path into the raw config; a provider path starts with `providers` and the provider's id. */
  path: readonly string[];
  type: EnvValueType;
  secret: boolean;
}

export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { env: 'HTTP_HOST', path: ['http', 'host'], type: 'string', secret: false },
  { env: 'HTTP_PORT', path: ['http', 'port'], type: 'integer', secret: false },
  { env: 'HTTP_AUTH_TOKENS', path: ['http', 'authTokens'], type: 'csv', secret: true },
  { env: 'DATA_DIR', path: ['memory', 'dataDir'], type: 'string', secret: false },
  { env: 'REDIS_URL', path: ['redis', 'url'], type: 'string', secret: true },
  { env: 'REDIS_KEY_PREFIX', path: ['redis', 'keyPrefix'], type: 'string', secret: false },
  { env: 'REDIS_SENTINELS', path: ['redis', 'sentinels'], type: 'csv', secret: false },
  { env: 'REDIS_MASTER_NAME', path: ['redis', 'masterName'], type: 'string', secret: false },
  { env: 'REDIS_SNAPSHOT_EVERY_MS', path: ['redis', 'snapshot', 'everyMs'], type: 'integer', secret: false },
  { env: 'REDIS_PASSWORD', path: ['redis', 'password'], type: 'string', secret: true },
  {
    env: 'REDIS_SENTINEL_PASSWORD',
    path: ['redis', 'sentinelPassword'],
    type: 'string',
    secret: true,
  },
  { env: 'NODE_ID', path: ['cluster', 'nodeId'], type: 'string', secret: false },
  { env: 'CLUSTER_LEASE_TTL_MS', path: ['cluster', 'leaseTtlMs'], type: 'integer', secret: false },
  { env: 'CLUSTER_ADVERTISE_URL', path: ['cluster', 'advertiseUrl'], type: 'string', secret: false },
  { env: 'ALERT_NOTIFY', path: ['alerts', 'notify'], type: 'csv', secret: false },
  { env: 'ALERT_OWNERS', path: ['alerts', 'owners'], type: 'csv', secret: false },
  { env: 'LOG_LEVEL', path: ['log', 'level'], type: 'string', secret: false },
  { env: 'SYSTEM_PROMPT', path: ['agent', 'systemPrompt'], type: 'string', secret: false },
  { env: 'LOCAL_LLM_PROBE', path: ['localProbe', 'enabled'], type: 'boolean', secret: false },
  { env: 'LOCAL_LLM_BASE_URL', path: ['localProbe', 'baseURL'], type: 'string', secret: false },
  { env: 'OPENAI_API_KEY', path: ['providers', 'openai', 'apiKey'], type: 'string', secret: true },
  { env: 'OPENAI_BASE_URL', path: ['providers', 'openai', 'baseURL'], type: 'string', secret: false },
  { env: 'OPENAI_MODEL', path: ['providers', 'openai', 'model'], type: 'string', secret: false },
  { env: 'ANTHROPIC_API_KEY', path: ['providers', 'anthropic', 'apiKey'], type: 'string', secret: true },
  { env: 'ANTHROPIC_BASE_URL', path: ['providers', 'anthropic', 'baseURL'], type: 'string', secret: false },
  { env: 'ANTHROPIC_MODEL', path: ['providers', 'anthropic', 'model'], type: 'string', secret: false },
  { env: 'TELEGRAM_BOT_TOKEN', path: ['channels', 'telegram', 'botToken'], type: 'string', secret: true },
  { env: 'TELEGRAM_API_ROOT', path: ['channels', 'telegram', 'apiRoot'], type: 'string', secret: false },
  { env: 'TELEGRAM_MODE', path: ['channels', 'telegram', 'mode'], type: 'string', secret: false },
  {
    env: 'TELEGRAM_WEBHOOK_SECRET',
    path: ['channels', 'telegram', 'webhookSecret'],
    type: 'string',
    secret: true,
  },
  { env: 'DISCORD_BOT_TOKEN', path: ['channels', 'discord', 'botToken'], type: 'string', secret: true },
  { env: 'DISCORD_API_ROOT', path: ['channels', 'discord', 'apiRoot'], type: 'string', secret: false },
  { env: 'DISCORD_GUILD_IDS', path: ['channels', 'discord', 'guildIds'], type: 'csv', secret: false },
  { env: 'SLACK_BOT_TOKEN', path: ['channels', 'slack', 'botToken'], type: 'string', secret: true },
  { env: 'SLACK_SIGNING_SECRET', path: ['channels', 'slack', 'signingSecret'], type: 'string', secret: true },
  { env: 'SLACK_APP_TOKEN', path: ['channels', 'slack', 'appToken'], type: 'string', secret: true },
  { env: 'SLACK_MODE', path: ['channels', 'slack', 'mode'], type: 'string', secret: false },
  { env: 'SLACK_API_URL', path: ['channels', 'slack', 'apiUrl'], type: 'string', secret: false },
  { env: 'WALLET_ENABLED', path: ['wallet', 'enabled'], type: 'boolean', secret: false },
  { env: 'WALLET_CLUSTER', path: ['wallet', 'cluster'], type: 'string', secret: false },
  { env: 'WALLET_ALLOW_MAINNET', path: ['wallet', 'allowMainnet'], type: 'boolean', secret: false },
  { env: 'WALLET_RPC_URLS', path: ['wallet', 'rpcUrls'], type: 'csv', secret: false },
  { env: 'WALLET_GENESIS_HASH', path: ['wallet', 'genesisHash'], type: 'string', secret: false },
  { env: 'WALLET_KEYPAIR_FILE', path: ['wallet', 'key', 'keypairFile'], type: 'string', secret: false },
  { env: 'WALLET_KEYSTORE_FILE', path: ['wallet', 'key', 'keystoreFile'], type: 'string', secret: false },
  {
    env: 'WALLET_KEYSTORE_PASSPHRASE',
    path: ['wallet', 'key', 'keystorePassphrase'],
    type: 'string',
    secret: true,
  },
  { env: 'WALLET_SECRET_KEY', path: ['wallet', 'key', 'secretKey'], type: 'string', secret: true },
  { env: 'WALLET_OWNERS', path: ['wallet', 'owners'], type: 'csv', secret: false },
  { env: 'WALLET_ALLOWLIST', path: ['wallet', 'allowlist'], type: 'csv', secret: false },
  { env: 'WALLET_PUBLIC_READ', path: ['wallet', 'publicRead'], type: 'boolean', secret: false },
  {
    env: 'CHANNEL_FAILOVER_AFTER_MS',
    path: ['channels', 'outbox', 'failoverAfterMs'],
    type: 'integer',
    secret: false,
  },
];

/** Config keys whose values are masked wherever they are shown. */
export const SECRET_KEYS = new Set([
  'apiKey',
  'authTokens',
  'url',
  'botToken',
  'signingSecret',
  'appToken',
  'webhookSecret',
  'password',
  'sentinelPassword',
  'keystorePassphrase',
  'secretKey',
  // A Solana RPC URL often carries the provider's API key in its path or query.
  'rpcUrls',
]);
