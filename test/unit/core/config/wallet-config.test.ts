import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../src/core/config/load-config.js';
import { configError, emptyDir } from './config-dirs.js';

describe('wallet configuration', () => {
  it('is off by default, on devnet, with mainnet not allowed', () => {
    const { wallet } = loadConfig({ env: {}, cwd: emptyDir() });
    expect(wallet.enabled).toBe(false);
    expect(wallet.cluster).toBe('devnet');
    expect(wallet.allowMainnet).toBe(false);
  });

  it('refuses mainnet without the explicit setting, and names the fix', () => {
    const error = configError({
      WALLET_ENABLED: 'true',
      WALLET_CLUSTER: 'mainnet-beta',
      WALLET_SECRET_KEY: '[1,2,3]',
    });
    expect(error.message).toContain('wallet.cluster');
    expect(error.message).toContain('WALLET_ALLOW_MAINNET=true');
  });

  it('wants exactly one key source, and a passphrase with a keystore', () => {
    expect(configError({ WALLET_ENABLED: 'true' }).message).toMatch(/wallet\.key.*is missing/);
    expect(
      configError({ WALLET_ENABLED: 'true', WALLET_KEYPAIR_FILE: '/k.json', WALLET_SECRET_KEY: '[1]' })
        .message,
    ).toContain('has 2 sources');
    expect(configError({ WALLET_ENABLED: 'true', WALLET_KEYSTORE_FILE: '/k.json' }).message).toContain(
      'WALLET_KEYSTORE_PASSPHRASE',
    );
  });

  it('refuses limits written as numbers, with more decimals than the token has, or for unknown tokens', () => {
    const base = { enabled: true, key: { keypairFile: '/k.json' } };
    expect(
      configError({}, { wallet: { ...base, limits: { SOL: { perTransaction: 1, perDay: '2' } } } }).message,
    ).toContain('decimal string');
    expect(
      configError(
        {},
        { wallet: { ...base, limits: { SOL: { perTransaction: '0.0000000001', perDay: '2' } } } },
      ).message,
    ).toContain('has 10 decimals');
    expect(
      configError({}, { wallet: { ...base, limits: { DOGE: { perTransaction: '1', perDay: '2' } } } })
        .message,
    ).toContain('not configured');
  });

  it('refuses an HTTP owner when anyone could claim that conversation', () => {
    const error = configError({ WALLET_OWNERS: 'http:alice' });
    expect(error.message).toContain('wallet.owners.0');
    expect(error.message).toContain('HTTP_AUTH_TOKENS');
  });

  it('masks the wallet secrets wherever config is shown', () => {
    const error = configError({
      WALLET_ENABLED: 'true',
      WALLET_CLUSTER: 'mainnet-beta',
      WALLET_SECRET_KEY: '[9,8,7,6,5,4,3,2,1]',
    });
    expect(error.message).not.toContain('9,8,7,6,5,4,3,2,1');
  });
});
