import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/core/config/load-config.js';
import { redisConnectionOptions } from '../../../src/core/redis/redis-connection.js';
import { BullMqDurableQueue } from '../../../src/jobs/bullmq-durable-queue.js';
import type { JobResult, QueuedJob } from '../../../src/jobs/durable-queue.js';
import { type FakeOpenAi, startFakeOpenAi } from '../../fakes/fake-openai.js';
import { type SentinelGroup, startSentinelGroup } from '../../support/redis-sentinel.js';
import { postMessage, startTestAgent, type TestAgent } from '../../support/test-agent.js';

/** How long the agent may take to answer again after the primary dies (a generous bound). */
const RECOVERY_BOUND_MS = 30_000;

/**
 * Replication is asynchronous: a write the primary acknowledged can die with it. These tests
 * measure failover, so before each kill they wait until the replica has acknowledged every write
 * (WAIT); the README states the window they close this way.
 */
async function waitForReplica(group: SentinelGroup): Promise<void> {
  const client = group.primaryClient();
  try {
    expect(await client.call('WAIT', '1', '5000')).toBe(1);
  } finally {
    client.disconnect();
  }
}

async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function bounded(what: string, work: Promise<unknown>, hung: string[], ms = 15_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    work.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  if (!finished) hung.push(`${what} (after ${ms} ms)`);
}

describe('Redis Sentinel failover', () => {
  let group: SentinelGroup | undefined;
  let fake: FakeOpenAi | undefined;
  let agent: TestAgent | undefined;
  let queue: BullMqDurableQueue<{ n: number }> | undefined;

  afterEach(async () => {
    // Each close is bounded, and the Redis processes are stopped whatever happens before.
    const hung: string[] = [];
    try {
      if (queue) await bounded('queue.close()', queue.close(), hung);
      if (agent) await bounded('agent.stop()', agent.agent.stop(), hung);
      if (fake) await bounded('fake.close()', fake.close(), hung);
    } finally {
      await group?.stop();
      queue = agent = fake = group = undefined;
    }
    expect(hung, 'closes that did not finish').toEqual([]);
  });

  it('an agent on Sentinel keeps every answered turn and answers again after the primary is killed', async () => {
    group = await startSentinelGroup({
      downAfterMs: 1000,
      password: 'primary-secret-41',
      sentinelPassword: 'sentinel-secret-42',
    });
    fake = await startFakeOpenAi();
    const dataDir = join(group.dir, 'agent-data');
    mkdirSync(dataDir);
    // A short turn deadline keeps the claim of a turn cut off by the kill short (deadline + 5 s),
    // so the retries below are answered within the test.
    writeFileSync(join(dataDir, 'agent.config.json'), JSON.stringify({ turn: { timeoutMs: 5000 } }));
    agent = await startTestAgent({
      DATA_DIR: dataDir,
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
      REDIS_SENTINELS: group.sentinels,
      REDIS_MASTER_NAME: group.masterName,
      REDIS_PASSWORD: 'primary-secret-41',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret-42',
      REDIS_KEY_PREFIX: 'sentinel-test',
    });
    const { url } = agent;
    expect(agent.agent.memory.backend).toBe('redis');

    type Outcome = { text: string; eventId: string; status: number; code?: string };
    const outcomes: Outcome[] = [];
    const send = async (text: string, eventId: string): Promise<Outcome> => {
      const outcome: Outcome = await postMessage(url, 'failover', { text, eventId }).then(
        ({ status, body }) => {
          if (status === 200) expect(body.reply.text).toBe(`echo: ${text}`);
          return { text, eventId, status, ...(status === 200 ? {} : { code: body.error?.code }) };
        },
        (error: Error) => ({ text, eventId, status: 0, code: error.message }),
      );
      outcomes.push(outcome);
      return outcome;
    };

    for (let i = 1; i <= 20; i++) expect((await send(`before ${i}`, `b-${i}`)).status).toBe(200);
    const primary = group.primaryClient();
    const keys = await primary.keys('sentinel-test:*');
    primary.disconnect();
    expect(keys.length).toBeGreaterThan(0);
    await waitForReplica(group);

    const oldPrimary = group.primaryPort();
    const killedAt = Date.now();
    await group.killPrimary();
    let promotedAt = 0;
    const promotion = group.waitForPromotion(RECOVERY_BOUND_MS).then((port) => {
      promotedAt = Date.now();
      return port;
    });
    let firstAnswerAt = 0;
    let answeredAfter = 0;
    for (let i = 1; answeredAfter < 10 && Date.now() - killedAt < RECOVERY_BOUND_MS; i++) {
      const outcome = await send(`after ${i}`, `a-${i}`);
      if (outcome.status === 200) {
        answeredAfter += 1;
        firstAnswerAt ||= Date.now();
      } else {
        await sleep(100);
      }
    }
    const newPrimary = await promotion;
    expect(newPrimary).not.toBe(oldPrimary);
    expect(firstAnswerAt, 'the agent answered again after the kill').toBeGreaterThan(0);
    expect(answeredAfter).toBe(10);

    // Whatever the kill refused, the sender's retry (same eventId) is answered: once, or as the
    // stored duplicate when the refused turn had in fact been committed.
    const refused = outcomes.filter((o) => o.status !== 200);
    for (const o of refused) {
      await until(`retry of ${o.eventId}`, RECOVERY_BOUND_MS, async () => {
        const { status, body } = await postMessage(url, 'failover', { text: o.text, eventId: o.eventId });
        if (status !== 200) return undefined;
        expect(body.reply.text).toBe(`echo: ${o.text}`);
        return true;
      });
    }

    // The full history needs Redis itself (503 until the client has found the new primary).
    const history = await until('the history', RECOVERY_BOUND_MS, async () => {
      const response = await fetch(`${url}/api/conversations/failover/messages?limit=500`);
      if (response.status !== 200) return undefined;
      return (await response.json()) as { turns: { user: string; assistant: string }[] };
    });
    const stored = history.turns.map((t) => t.user);
    const answeredBefore = outcomes.filter((o) => o.eventId.startsWith('b-')).map((o) => o.text);
    const answered = [...new Set(outcomes.map((o) => o.text))];
    // Every turn answered before the kill survived the promotion, in order, and nothing was
    // answered twice.
    expect(stored.slice(0, answeredBefore.length)).toEqual(answeredBefore);
    expect(history.turns.every((t) => t.assistant === `echo: ${t.user}`)).toBe(true);
    expect(stored.slice().sort()).toEqual(answered.slice().sort());
    const lost = answered.filter((text) => !stored.includes(text));
    expect(lost).toEqual([]);

    const codes = refused.reduce<Record<string, number>>((acc, o) => {
      const key = `${o.status} ${o.code ?? ''}`.trim();
      acc[key] = (acc[key] ?? 0) + 1;
      return acc;
    }, {});
    console.info(
      `[sentinel failover, down-after 1000 ms] kill -> sentinels promoted ${newPrimary}: ${promotedAt - killedAt} ms; ` +
        `kill -> first answer: ${firstAnswerAt - killedAt} ms; sent ${outcomes.length} ` +
        `(before kill ${answeredBefore.length}, after ${outcomes.length - answeredBefore.length}); ` +
        `answered at once ${outcomes.length - refused.length}; refused during failover ${refused.length} ` +
        `${JSON.stringify(codes)}, all answered on retry; answered turns lost: ${lost.length}`,
    );
  }, 120_000);

  it('a BullMQ queue through Sentinel delivers jobs added before and after a failover', async () => {
    group = await startSentinelGroup({ downAfterMs: 1000 });
    const config = loadConfig({
      env: { REDIS_SENTINELS: group.sentinels, REDIS_MASTER_NAME: group.masterName },
      cwd: group.dir,
    });
    const connection = redisConnectionOptions(config.redis);
    expect(connection?.sentinels).toHaveLength(3);
    const q = new BullMqDurableQueue<{ n: number }>({
      name: 'failover',
      connection: connection ?? {},
      prefix: 'sentinel-test',
      logger: pino({ level: 'silent' }),
      concurrency: 2,
      retryBaseMs: 50,
      retryMaxMs: 500,
    });
    queue = q;
    const runs: { id: string; attempt: number; at: number }[] = [];
    await q.start(async (job: QueuedJob<{ n: number }>): Promise<JobResult> => {
      runs.push({ id: job.id, attempt: job.attempt, at: Date.now() });
      // "held" jobs ask to run again later, so they sit in the delayed set across the failover.
      if (job.id.startsWith('held') && job.attempt === 1) return { retryInMs: 1500 };
      return { done: true };
    });
    const doneIds = () =>
      new Set(runs.filter((r) => !r.id.startsWith('held') || r.attempt > 1).map((r) => r.id));

    const before = ['before-1', 'before-2', 'before-3', 'before-4', 'before-5'];
    const held = ['held-1', 'held-2', 'held-3'];
    for (const [n, id] of [...before, ...held].entries()) await q.add(id, { n });
    await until('the jobs added before the kill to run', 10_000, async () =>
      before.every((id) => doneIds().has(id)) && held.every((id) => runs.some((r) => r.id === id))
        ? true
        : undefined,
    );
    await waitForReplica(group);

    const killedAt = Date.now();
    await group.killPrimary();
    await group.waitForPromotion(RECOVERY_BOUND_MS);
    const promotedAt = Date.now();
    const after = ['after-1', 'after-2', 'after-3', 'after-4', 'after-5'];
    let refusedAdds = 0;
    for (const [n, id] of after.entries()) {
      // The queue fails an add fast while Redis is away (the platform would deliver the event
      // again); the test plays that platform and retries.
      await until(`add ${id}`, RECOVERY_BOUND_MS, () =>
        q.add(id, { n }).then(
          () => true,
          () => {
            refusedAdds += 1;
            return undefined;
          },
        ),
      );
    }
    const all = [...before, ...held, ...after];
    await until('every job to be delivered', RECOVERY_BOUND_MS, async () =>
      all.every((id) => doneIds().has(id)) ? true : undefined,
    );

    const completions = (id: string) =>
      runs.filter((r) => r.id === id && (!id.startsWith('held') || r.attempt > 1));
    for (const id of all) expect(completions(id), id).toHaveLength(1);
    const firstAfter = Math.min(...runs.filter((r) => r.id.startsWith('after')).map((r) => r.at));
    console.info(
      `[sentinel failover, BullMQ] kill -> promoted: ${promotedAt - killedAt} ms; kill -> first job added after it ran: ` +
        `${firstAfter - killedAt} ms; delivered ${before.length} before, ${held.length} held across, ${after.length} after; ` +
        `adds refused during failover: ${refusedAdds}`,
    );
  }, 120_000);
});
