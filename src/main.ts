#!/usr/bin/env node
import { isConfigError } from './core/config/config-error.js';
import { loadConfig } from './core/config/load-config.js';
import { secretFilesRefreshMs } from './core/config/secret-files.js';
import { isVaultError } from './core/config/vault/vault-client.js';
import type { VaultSecretSource } from './core/config/vault/vault-secret-source.js';
import { checkVault, formatVaultStartupError, loadVaultSecrets } from './core/config/vault/vault-startup.js';
import { type Agent, createAgent } from './core/create-agent.js';
import { doctorExitCode, formatDoctorReport, runDoctor } from './core/doctor.js';
import { runKeystoreCommand } from './wallet/keys/keystore-cli.js';
import { isWalletKeyError } from './wallet/keys/wallet-key-error.js';

/** EX_CONFIG from sysexits.h: PM2 and systemd logs show the cause at a glance. */
const EXIT_CONFIG = 78;

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'start';
  if (command === '--help' || command === 'help') {
    process.stdout.write(
      'usage: redundant-agent [start|doctor]\n' +
        '       redundant-agent keystore create <keypair.json> <out.json>   (passphrase from WALLET_KEYSTORE_PASSPHRASE)\n' +
        '       redundant-agent keystore address <file>\n',
    );
    return;
  }
  if (command === 'keystore') {
    process.exit(await runKeystoreCommand(argv.slice(1), process.env, process));
  }
  let config: ReturnType<typeof loadConfig>;
  let vaultSource: VaultSecretSource | undefined;
  let filesRefreshMs = 0;
  try {
    filesRefreshMs = secretFilesRefreshMs(process.env);
    // With VAULT_ADDR set, the secrets Vault holds join the environment the config is read from;
    // a variable the environment sets itself (or its NAME_FILE) wins over Vault.
    const vault = await loadVaultSecrets(process.env);
    config = loadConfig({ env: vault.env });
    vaultSource = vault.source;
  } catch (error) {
    if (isConfigError(error)) {
      process.stderr.write(`${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    if (isVaultError(error)) {
      process.stderr.write(`${formatVaultStartupError(error)}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }

  if (command === 'doctor') {
    const findings = await runDoctor(config);
    if (process.env.VAULT_ADDR) findings.unshift(await checkVault(process.env));
    process.stdout.write(`${formatDoctorReport(config, findings)}\n`);
    process.exit(doctorExitCode(findings));
  }
  if (command !== 'start') {
    process.stderr.write(`unknown command "${command}"; use start or doctor\n`);
    process.exit(2);
  }

  let agent: Agent;
  try {
    const source = vaultSource;
    agent = await createAgent(config, {
      // The same load as above, with Vault's current values and the files as they are now.
      reloadConfig: () => loadConfig({ env: source ? source.mergeInto(process.env) : process.env }),
      ...(source ? { secretSource: source } : {}),
      ...(filesRefreshMs > 0 ? { secretFilesCheckEveryMs: filesRefreshMs } : {}),
    });
  } catch (error) {
    // An unsafe or unreadable wallet key stops the start, like a config error, with its fix.
    if (isWalletKeyError(error)) {
      process.stderr.write(`wallet: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    agent.logger.info({ signal }, 'shutting down: finishing in-flight turns');
    agent.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        agent.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('unhandledRejection', (reason) => agent.logger.error({ err: reason }, 'unhandled rejection'));

  try {
    await agent.start();
  } catch (error) {
    agent.logger.fatal({ err: error }, 'could not start');
    process.exit(1);
  }
  // PM2's wait_ready: the new process takes traffic only once it says so.
  process.send?.('ready');
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`fatal: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
