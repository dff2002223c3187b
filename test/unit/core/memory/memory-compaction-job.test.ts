import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentError } from '../../../../src/core/errors.js';
import { LogMemoryStore } from '../../../../src/core/memory/log-memory-store.js';
import {
  MAX_SUMMARY_CHARS,
  memoryCompactionJob,
  SUMMARY_INSTRUCTION,
} from '../../../../src/core/memory/memory-compaction-job.js';
import type { Turn } from '../../../../src/core/memory/memory-store.js';
import type { ChatProvider, ChatRequest, ChatResult } from '../../../../src/providers/provider.js';

const logger = pino({ level: 'silent' });

/** A provider answering with `answer(request)`, recording what it was asked. */
function provider(
  answer: (request: ChatRequest) => Promise<string>,
): ChatProvider & { asked: ChatRequest[] } {
  const asked: ChatRequest[] = [];
  return {
    id: 'scripted',
    kind: 'openai',
    model: 'scripted-model',
    asked,
    async complete(request): Promise<ChatResult> {
      asked.push(request);
      return {
        text: await answer(request),
        providerId: 'scripted',
        model: 'scripted-model',
        finishReason: 'stop',
      };
    },
    stream: () => {
      throw new Error('not used');
    },
    probe: async () => {},
  };
}

describe('memory compaction job', () => {
  const stores: LogMemoryStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  let at = 0;
  async function storeWith(turns: Record<string, string[]>): Promise<LogMemoryStore> {
    const store = new LogMemoryStore({
      dataDir: mkdtempSync(join(tmpdir(), 'agent-compaction-')),
      retainTurns: 100,
      dedupeTtlSeconds: 3600,
      logger,
    });
    await store.open();
    stores.push(store);
    for (const [personId, texts] of Object.entries(turns)) {
      for (const text of texts) {
        at += 1;
        const turn: Turn = {
          id: `t${at}`,
          personId,
          channel: 'http',
          user: text,
          assistant: `re ${text}`,
          at,
        };
        await store.commit({ eventKey: `http:${at}`, reply: turn.assistant, turn });
      }
    }
    return store;
  }

  const job = (store: LogMemoryStore, chat: ChatProvider) =>
    memoryCompactionJob({
      memory: store,
      provider: () => chat,
      keepTurns: 2,
      retainTurns: 100,
      everyMs: 60_000,
      logger,
    });

  it('summarises only the turns outside the window, with the previous summary, by a fixed instruction', async () => {
    const store = await storeWith({ ann: ['a1', 'a2', 'a3', 'a4'] });
    const chat = provider(async () => 'ann likes tea');
    await job(store, chat).run(new AbortController().signal);
    expect(chat.asked).toHaveLength(1);
    expect(chat.asked[0]?.system).toBe(SUMMARY_INSTRUCTION);
    const content = chat.asked[0]?.messages[0]?.content ?? '';
    expect(content).toContain('Person: a1\nAssistant: re a1');
    expect(content).toContain('Person: a2');
    expect(content).not.toContain('a3');
    expect(await store.summary('ann')).toMatchObject({ text: 'ann likes tea' });

    // Nothing new outside the window: no call. One more turn: the old summary plus turn a3.
    await job(store, chat).run(new AbortController().signal);
    expect(chat.asked).toHaveLength(1);
    at += 1;
    const turn: Turn = { id: 'x', personId: 'ann', channel: 'http', user: 'a5', assistant: 're a5', at };
    await store.commit({ eventKey: 'http:x', reply: 're a5', turn });
    await job(store, chat).run(new AbortController().signal);
    expect(chat.asked[1]?.messages[0]?.content).toBe(
      'Earlier summary:\nann likes tea\n\nNew turns:\nPerson: a3\nAssistant: re a3',
    );
  });

  it('changes nothing when a summary fails, still writes the others, and fails the run', async () => {
    const store = await storeWith({ bad: ['b1', 'b2', 'b3'], good: ['g1', 'g2', 'g3'] });
    const chat = provider(async (request) => {
      if (String(request.messages[0]?.content).includes('b1')) throw new Error('provider down');
      return 'good summary';
    });
    await expect(job(store, chat).run(new AbortController().signal)).rejects.toThrow(
      '1 of 2 summaries failed; the last: provider down',
    );
    expect(await store.summary('bad')).toBeUndefined();
    expect(await store.summary('good')).toMatchObject({ text: 'good summary' });
    expect(await store.personsToCompact(2)).toEqual(['bad']);
  });

  it('leaves a person at a budget cap for later without failing the run', async () => {
    const store = await storeWith({ capped: ['c1', 'c2', 'c3'] });
    const chat = provider(async () => {
      throw new AgentError('budget_exceeded', 'the person budget is used up');
    });
    await job(store, chat).run(new AbortController().signal);
    expect(chat.asked).toHaveLength(1);
    expect(await store.summary('capped')).toBeUndefined();
    expect(await store.personsToCompact(2)).toEqual(['capped']);
  });

  it('treats an empty answer as a failure, and cuts an overlong one', async () => {
    const empty = await storeWith({ e: ['1', '2', '3'] });
    await expect(
      job(
        empty,
        provider(async () => '  '),
      ).run(new AbortController().signal),
    ).rejects.toThrow('returned no summary');
    expect(await empty.summary('e')).toBeUndefined();

    const long = await storeWith({ l: ['1', '2', '3'] });
    await job(
      long,
      provider(async () => 'x'.repeat(MAX_SUMMARY_CHARS + 100)),
    ).run(new AbortController().signal);
    expect((await long.summary('l'))?.text).toHaveLength(MAX_SUMMARY_CHARS);
  });

  it('keeps no summary when the person resets while it is written', async () => {
    const store = await storeWith({ r: ['r1', 'r2', 'r3'] });
    const chat = provider(async () => {
      at += 1;
      await store.commit({ eventKey: 'http:reset', reply: 'ok', reset: { reset: true, personId: 'r', at } });
      return 'too late';
    });
    await job(store, chat).run(new AbortController().signal);
    expect(chat.asked).toHaveLength(1);
    expect(await store.summary('r')).toBeUndefined();
  });

  it('stops between persons when aborted', async () => {
    const store = await storeWith({ p: ['1', '2', '3'], q: ['1', '2', '3'] });
    const abort = new AbortController();
    const chat = provider(async () => {
      abort.abort(new Error('stopping'));
      return 'first';
    });
    await expect(job(store, chat).run(abort.signal)).rejects.toThrow('stopping');
    expect(chat.asked).toHaveLength(1);
  });
});
