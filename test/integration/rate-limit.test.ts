import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postMessage, startTestAgent } from '../support/test-agent.js';

describe('rate limit', () => {
  it('limits each token separately and answers 429 JSON past the limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-rate-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ http: { rateLimit: { max: 3, windowMs: 60_000 } } }),
    );
    const tokens = ['rate-token-aaaaaaaaaaaaaaaa', 'rate-token-bbbbbbbbbbbbbbbb'];
    const test = await startTestAgent({
      AGENT_CONFIG: join(dir, 'config.json'),
      HTTP_AUTH_TOKENS: tokens.join(','),
    });
    try {
      const as = (token: string) => ({ authorization: `Bearer ${token}` });
      for (let i = 0; i < 3; i += 1) {
        expect((await postMessage(test.url, 'r', { text: '/help' }, as(tokens[0] as string))).status).toBe(
          200,
        );
      }
      const limited = await postMessage(test.url, 'r', { text: '/help' }, as(tokens[0] as string));
      expect(limited.status).toBe(429);
      expect(limited.body).toEqual({
        error: { code: 'rate_limited', message: expect.stringMatching(/retry in \d+ s/) },
      });
      // Another token has its own budget.
      expect((await postMessage(test.url, 'r', { text: '/help' }, as(tokens[1] as string))).status).toBe(200);
      // Health checks are never rate limited.
      expect((await fetch(`${test.url}/healthz`)).status).toBe(200);
    } finally {
      await test.agent.stop();
    }
  });
});
