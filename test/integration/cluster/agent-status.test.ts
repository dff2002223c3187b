import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeTelegram, startFakeTelegram } from '../../fakes/fake-telegram.js';
import { startRedis, type TestRedis } from '../../support/redis-server.js';
import { postMessage, startTestAgent, type TestAgent } from '../../support/test-agent.js';

describe('an agent on Redis is a node: /status shows the nodes and who holds each connection', () => {
  let redis: TestRedis;
  let telegram: FakeTelegram;
  let test: TestAgent;

  beforeAll(async () => {
    redis = await startRedis();
    telegram = await startFakeTelegram();
    const dir = mkdtempSync(join(tmpdir(), 'agent-node-status-'));
    const configPath = join(dir, 'agent.config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        channels: { telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 } },
      }),
    );
    // The Redis connection becomes ready while the agent starts: the lease must still be taken by
    // the channel, not by a wake-up before the channel had started.
    test = await startTestAgent({
      REDIS_URL: redis.url,
      NODE_ID: 'node-a',
      AGENT_CONFIG: configPath,
      DATA_DIR: dir,
    });
  });
  afterAll(async () => {
    await test.agent.stop();
    await telegram.close();
    await redis.stop();
  });

  it('holds the Telegram connection, answers on it, and reports it in /status and /api/status', async () => {
    const deadline = Date.now() + 10_000;
    while (!test.agent.channels?.status().telegram?.connected && Date.now() < deadline) await sleep(20);
    expect(test.agent.channels?.status().telegram).toMatchObject({ connected: true, role: 'active' });

    const { body } = await postMessage(test.url, 'ops', { text: '/status' });
    const lines: string[] = body.reply.text.split('\n');
    expect(lines).toContain('channels: http ok; telegram connected (held by this node)');
    expect(lines).toContain('nodes: node-a (this node) up');
    expect(lines.find((l) => l.startsWith('connections: '))).toMatch(
      /^connections: telegram on node-a since \d\d:\d\d:\d\dZ$/,
    );

    const status = (await (await fetch(`${test.url}/api/status`)).json()) as {
      cluster: { node: string; nodes: { node: string; up: boolean; self: boolean }[]; leases: unknown[] };
    };
    expect(status.cluster.node).toBe('node-a');
    expect(status.cluster.nodes).toEqual([expect.objectContaining({ node: 'node-a', up: true, self: true })]);
    expect(status.cluster.leases).toEqual([
      { name: 'channel:telegram', holder: expect.objectContaining({ node: 'node-a', fence: 1 }) },
    ]);
  });
});
