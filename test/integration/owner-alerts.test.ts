import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/fake-openai.js';
import { type FakeTelegram, startFakeTelegram } from '../fakes/fake-telegram.js';
import { postMessage, startTestAgent, type TestAgent } from '../support/test-agent.js';

const OWNER_CHAT = 555;
const API_KEY = 'sk-owner-alerts-secret-key';

describe('a maintenance job that keeps failing alerts the owners in their chat', () => {
  let llm: FakeOpenAi;
  let telegram: FakeTelegram;
  let test: TestAgent;

  beforeAll(async () => {
    llm = await startFakeOpenAi();
    telegram = await startFakeTelegram();
    // The owner has talked to the bot before (a bot can only message chats it knows).
    telegram.addChat({ id: OWNER_CHAT, type: 'private', first_name: 'Owner' });
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-alerts-'));
    const configPath = join(dataDir, 'agent.config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        channels: { telegram: { botToken: telegram.token, apiRoot: telegram.url, pollTimeoutSeconds: 1 } },
        context: { maxTurns: 1 },
        memory: { compaction: { enabled: true, everyMs: 1000 } },
        jobs: { alertAfterFailures: 2 },
      }),
    );
    test = await startTestAgent({
      AGENT_CONFIG: configPath,
      DATA_DIR: dataDir,
      OPENAI_BASE_URL: llm.baseURL,
      OPENAI_API_KEY: API_KEY,
      ALERT_NOTIFY: `telegram:${OWNER_CHAT}`,
    });
  });
  afterAll(async () => {
    await test.agent.stop();
    await Promise.all([llm.close(), telegram.close()]);
  });

  it('sends the alert to the configured chat once the job failed the configured runs in a row', async () => {
    // Three turns with a window of one: two of them are due for compaction.
    for (const n of [1, 2, 3]) {
      const { status } = await postMessage(test.url, 'alice', { text: `turn ${n}`, eventId: `alice-${n}` });
      expect(status).toBe(200);
    }
    // Every summary request now fails, so every compaction run fails.
    llm.setFault({ kind: 'status', status: 500 });

    const deadline = Date.now() + 20_000;
    while (!telegram.sent.some((m) => m.chatId === OWNER_CHAT) && Date.now() < deadline) await sleep(50);
    const alerts = telegram.sent.filter((m) => m.chatId === OWNER_CHAT);
    expect(alerts.length).toBeGreaterThanOrEqual(1);
    expect(alerts[0]?.text).toMatch(/the maintenance job "memory-compaction" failed 2 runs in a row/);
    for (const alert of alerts) expect(alert.text).not.toContain(API_KEY);
  });
});
