import type { Logger } from 'pino';
import type { JobDefinition } from '../../jobs/job-scheduler.js';
import type { ChatProvider, ChatRequest } from '../../providers/provider.js';
import { type MemoryStore, type MemorySummary, type Turn, turnsToSummarise } from './memory-store.js';

/** The fixed instruction for every summary; the transcript is the only thing that varies. */
export const SUMMARY_INSTRUCTION =
  'You keep the memory of a conversation between a person and an assistant. Rewrite the earlier ' +
  'summary (if any) and the new turns as one short summary, at most 200 words, for the assistant ' +
  'to read before the next messages. Keep facts about the person, their preferences, decisions, ' +
  'commitments and open questions; drop small talk. Write only the summary.';

/** Transcript characters per summary call (about 6,000 tokens); longer backlogs take several runs. */
const MAX_TRANSCRIPT_CHARS = 24_000;
/** A summary longer than this is cut, so it cannot crowd the recent turns out of the context. */
export const MAX_SUMMARY_CHARS = 4000;
const MAX_SUMMARY_TOKENS = 600;

export interface MemoryCompactionDeps {
  memory: MemoryStore;
  /** The provider the pipeline uses (the gateway), read at each run. */
  provider: () => ChatProvider;
  /** `context.maxTurns`: turns older than the newest this many are summarised. */
  keepTurns: number;
  /** `memory.retainTurns`: the most turns a store holds per person. */
  retainTurns: number;
  everyMs: number;
  logger: Logger;
}

/**
 * Memory compaction: for each person with turns that fell out of the context window since their
 * last summary, asks the provider for a new summary (the previous one plus those turns) and
 * stores it; the pipeline sends it ahead of the recent turns. The call is charged to the person
 * (channel `memory-compaction`). A failed summary changes nothing and the run counts as failed;
 * the others in the run are still written. One refused by a budget cap only waits.
 */
export function memoryCompactionJob(deps: MemoryCompactionDeps): JobDefinition {
  return {
    name: 'memory-compaction',
    everyMs: deps.everyMs,
    run: async (signal) => {
      const provider = deps.provider();
      if (provider.kind === 'none') return; // Nothing can summarise yet.
      const persons = await deps.memory.personsToCompact(deps.keepTurns);
      let failed = 0;
      let lastError = '';
      for (const personId of persons) {
        signal.throwIfAborted();
        try {
          await compactPerson(personId, provider, deps, signal);
        } catch (error) {
          if (signal.aborted) throw error;
          if ((error as { code?: unknown })?.code === 'budget_exceeded') {
            // The person (or everyone) is at a budget cap: their summary waits, nothing is wrong.
            deps.logger.debug({ personId }, 'memory compaction: skipped, a budget is used up');
            continue;
          }
          failed += 1;
          lastError = (error as Error)?.message ?? String(error);
          deps.logger.warn({ personId, err: lastError }, 'memory compaction: a summary failed');
        }
      }
      if (failed > 0) {
        throw new Error(`${failed} of ${persons.length} summaries failed; the last: ${lastError}`);
      }
    },
  };
}

async function compactPerson(
  personId: string,
  provider: ChatProvider,
  deps: MemoryCompactionDeps,
  signal: AbortSignal,
): Promise<void> {
  const [turns, previous] = await Promise.all([
    deps.memory.recentTurns(personId, deps.retainTurns),
    deps.memory.summary(personId),
  ]);
  const batch = withinChars(turnsToSummarise(turns, deps.keepTurns, previous), MAX_TRANSCRIPT_CHARS);
  const last = batch.at(-1);
  if (!last) return;
  const result = await provider.complete(summaryRequest(previous, batch), {
    signal,
    meta: { personId, channel: 'memory-compaction' },
  });
  const text = result.text.trim();
  if (text.length === 0 || result.finishReason === 'refusal') {
    throw new Error(`provider "${result.providerId}" returned no summary (${result.finishReason})`);
  }
  const saved = await deps.memory.saveSummary(personId, text.slice(0, MAX_SUMMARY_CHARS), last.at);
  if (!saved) deps.logger.debug({ personId }, 'memory compaction: the conversation was reset meanwhile');
}

export function summaryRequest(previous: MemorySummary | undefined, turns: readonly Turn[]): ChatRequest {
  const transcript = turns.map((t) => `Person: ${t.user}\nAssistant: ${t.assistant}`).join('\n\n');
  const content = previous
    ? `Earlier summary:\n${previous.text}\n\nNew turns:\n${transcript}`
    : `Turns:\n${transcript}`;
  return {
    system: SUMMARY_INSTRUCTION,
    messages: [{ role: 'user', content }],
    maxOutputTokens: MAX_SUMMARY_TOKENS,
  };
}

/** The oldest turns whose text fits `maxChars` (at least one, so a long turn cannot stall it). */
function withinChars(turns: readonly Turn[], maxChars: number): Turn[] {
  const kept: Turn[] = [];
  let used = 0;
  for (const turn of turns) {
    used += turn.user.length + turn.assistant.length;
    if (kept.length > 0 && used > maxChars) break;
    kept.push(turn);
  }
  return kept;
}
