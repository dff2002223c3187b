import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { type FakeTelegram, startFakeTelegram } from '../fakes/fake-telegram.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { postMessage, startTestAgent, type TestAgent } from '../support/test-agent.js';
import { until } from '../support/until.js';

/** The gauges read from an agent node's state at each scrape: queues, leases, Redis, jobs. */
describe('/metrics on a node of a cluster', () => {
  let redis: TestRedis;
  let telegram: FakeTelegram;
  let fake: FakeOpenAi;
  let test: TestAgent;
  let redisDown = false;

  beforeAll(async () => {
    redis = await startRedis();
    telegram = await startFakeTelegram();
    fake = await startFakeOpenAi();
    const dir = mkdtempSync(join(tmpdir(), 'agent-metrics-cluster-'));
    writeFileSync(
      join(dir, 'agent.config.json'),
      JSON.stringify({
        channels: { telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 } },
      }),
    );
    test = await startTestAgent({
      REDIS_URL: redis.url,
      NODE_ID: 'metrics-node',
      AGENT_CONFIG: join(dir, 'agent.config.json'),
      DATA_DIR: dir,
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
    });
  });
  afterAll(async () => {
    await test.agent.stop();
    if (redisDown) await redis.up();
    await redis.stop();
    await telegram.close();
    await fake.close();
  });

  const scrape = async () => (await fetch(`${test.url}/metrics`)).text();

  it('shows the lease held, the queue depths, Redis and the write-ahead log, and the jobs', async () => {
    await until(() => test.agent.channels?.status().telegram?.connected === true);
    let text = await scrape();
    expect(text).toMatch(/^agent_lease_held\{lease="channel:telegram"\} 1$/m);
    expect(text).toMatch(/^agent_queue_depth\{queue="inbox"\} \d+$/m);
    expect(text).toMatch(/^agent_queue_depth\{queue="outbox"\} \d+$/m);
    expect(text).toMatch(/^agent_redis_reachable 1$/m);
    expect(text).toMatch(/^agent_write_ahead_pending 0$/m);

    await redis.down();
    redisDown = true;
    expect((await postMessage(test.url, 'metrics', { text: 'during', eventId: 'm-1' })).status).toBe(200);
    text = await scrape();
    expect(text).toMatch(/^agent_redis_reachable 0$/m);
    expect(text).toMatch(/^agent_write_ahead_pending [1-9]\d*$/m);

    await redis.up();
    redisDown = false;
    await until(async () => /^agent_write_ahead_pending 0$/m.test(await scrape()), 15_000);
    expect(await scrape()).toMatch(/^agent_redis_reachable 1$/m);
  });
});
