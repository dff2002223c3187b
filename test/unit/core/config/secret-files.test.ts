import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../../../src/core/config/config-error.js';
import { secretFilesRefreshMs } from '../../../../src/core/config/secret-files.js';

describe('secretFilesRefreshMs', () => {
  it('checks the files only when a secret comes from one', () => {
    expect(secretFilesRefreshMs({ OPENAI_API_KEY: 'sk-x', WALLET_KEYPAIR_FILE: '/k.json' })).toBe(0);
    expect(secretFilesRefreshMs({ OPENAI_API_KEY_FILE: '/run/secrets/openai' })).toBe(60_000);
    expect(
      secretFilesRefreshMs({ OPENAI_API_KEY_FILE: '/run/secrets/openai', SECRET_FILES_REFRESH_MS: '0' }),
    ).toBe(0);
    expect(secretFilesRefreshMs({ HTTP_AUTH_TOKENS_FILE: '/t', SECRET_FILES_REFRESH_MS: '2500' })).toBe(2500);
  });

  it('refuses a bad interval, naming the variable and the fix', () => {
    for (const bad of ['50', 'soon', '-1']) {
      let caught: unknown;
      try {
        secretFilesRefreshMs({ HTTP_AUTH_TOKENS_FILE: '/t', SECRET_FILES_REFRESH_MS: bad });
      } catch (error) {
        caught = error;
      }
      expect(isConfigError(caught), bad).toBe(true);
      expect((caught as Error).message).toContain('SECRET_FILES_REFRESH_MS');
      expect((caught as Error).message).toContain('fix: set SECRET_FILES_REFRESH_MS');
    }
  });
});
