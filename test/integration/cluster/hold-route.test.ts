import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { startTestAgent, type TestAgent } from '../../support/test-agent.js';

const TOKEN = 'hold-route-test-token-0123';

/** The mesh request a lease holder sends during a Redis outage, as an agent serves it. */
describe('POST /api/cluster/hold', () => {
  let redis: TestRedis;
  let test: TestAgent;

  beforeAll(async () => {
    redis = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'agent-hold-'));
    // A rate limit the hold requests alone would pass in a second.
    writeFileSync(
      join(dir, 'agent.config.json'),
      JSON.stringify({ http: { rateLimit: { max: 2, windowMs: 60_000 } } }),
    );
    test = await startTestAgent({
      REDIS_URL: redis.url,
      NODE_ID: 'peer',
      AGENT_CONFIG: join(dir, 'agent.config.json'),
      DATA_DIR: dir,
      HTTP_AUTH_TOKENS: TOKEN,
    });
  });
  afterAll(async () => {
    await test.agent.stop();
    await redis.stop();
  });

  const hold = (body: unknown, token: string | null = TOKEN) =>
    fetch(`${test.url}/api/cluster/hold`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  it('refuses to promise while this node reaches Redis, is never rate-limited, and checks its input', async () => {
    for (let i = 0; i < 5; i++) {
      const response = await hold({ lease: 'channel:telegram', node: 'holder', ms: 2000 });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ promised: false, reason: 'this node reaches Redis' });
    }
    const bad = await hold({ lease: 'channel:telegram', node: 'holder', ms: -1 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('bad_request');
    const anonymous = await hold({ lease: 'channel:telegram', node: 'holder', ms: 2000 }, null);
    expect(anonymous.status).toBe(401);
  });
});
