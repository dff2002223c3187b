import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { CallOptions, ChatProvider, ChatRequest, ChatResult } from '../providers/provider.js';
import type { Command } from './commands/command.js';
import { parseCommand } from './commands/command.js';
import { buildContext, type ContextLimits, withSummary } from './context-window.js';
import { AgentError, isAgentError } from './errors.js';
import type { IdentityResolver } from './identity/identity-store.js';
import type { InboundMessage, Reply } from './inbound-message.js';
import { LinkedAbort } from './linked-abort.js';
import type { MemoryStore, MemorySummary, Turn } from './memory/memory-store.js';
import type { ToolContext, TurnTools } from './tools/turn-tools.js';

/** Tool rounds per turn: enough for look-up-then-act, and a stop for a model that loops. */
const MAX_TOOL_ROUNDS = 4;

export interface PipelineOptions {
  memory: MemoryStore;
  identity: IdentityResolver;
  provider: () => ChatProvider;
  commands: readonly Command[];
  /** Tools the model may call during a turn (the wallet's); their results go back to the model. */
  tools?: TurnTools;
  systemPrompt: string;
  context: ContextLimits;
  turnTimeoutMs: number;
  maxMessageChars: number;
  logger: Logger;
  /** Counts messages in and replies out per channel (metrics). */
  onMessage?: (channel: string, direction: 'in' | 'out') => void;
  now?: () => number;
}

export interface HandleOptions {
  /** Called with each piece of reply text as the provider streams it. */
  onText?: (text: string) => void;
  signal?: AbortSignal;
  /**
   * The logger for everything about this message, carrying its `turn` id (and the channel's own
   * fields, such as an HTTP request id). Default: the pipeline's logger with `turn` added.
   */
  logger?: Logger;
}

/**
 * The id that follows one inbound message through the logs, from receipt to delivery: its event
 * key, the same on every node (the inbox and outbox jobs are named by it too).
 */
export function turnId(channel: string, eventId: string): string {
  return `${channel}:${eventId}`;
}

/**
 * The platform-free path of one inbound message: dedupe -> identity -> command or agent turn ->
 * durable commit -> reply. The reply is returned only after its turn is durable, so nothing a
 * person was answered can be lost.
 */
export class Pipeline {
  private readonly commandsByName: Map<string, Command>;
  private readonly inFlight = new Set<Promise<unknown>>();
  private accepting = true;
  private readonly now: () => number;

  constructor(private readonly options: PipelineOptions) {
    this.commandsByName = new Map(options.commands.map((c) => [c.name, c]));
    this.now = options.now ?? Date.now;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  handle(message: InboundMessage, options: HandleOptions = {}): Promise<Reply> {
    if (!this.accepting) {
      return Promise.reject(
        new AgentError('shutting_down', 'the agent is shutting down; retry on another node'),
      );
    }
    this.options.onMessage?.(message.channel, 'in');
    const logger =
      options.logger ?? this.options.logger.child({ turn: turnId(message.channel, message.eventId) });
    const started = this.now();
    const work = this.process(message, { ...options, logger }).then(
      (reply) => {
        this.options.onMessage?.(message.channel, 'out');
        logger.info(
          {
            kind: reply.kind,
            duplicate: reply.duplicate,
            ...(reply.providerId ? { provider: reply.providerId } : {}),
            ms: this.now() - started,
          },
          'turn answered',
        );
        return reply;
      },
      (error: unknown) => {
        logger.info({ code: isAgentError(error) ? error.code : 'internal_error' }, 'turn not answered');
        throw error;
      },
    );
    this.inFlight.add(work);
    const done = () => this.inFlight.delete(work);
    work.then(done, done);
    return work;
  }

  /** Stops taking new messages and waits (up to `timeoutMs`) for in-flight ones. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.accepting = false;
    const all = Promise.allSettled([...this.inFlight]).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const finished = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return finished;
  }

  private async process(
    message: InboundMessage,
    options: HandleOptions & { logger: Logger },
  ): Promise<Reply> {
    const text = message.text.trim();
    if (text.length === 0) throw new AgentError('bad_request', 'the message is empty');
    if (text.length > this.options.maxMessageChars) {
      throw new AgentError(
        'bad_request',
        `the message is longer than ${this.options.maxMessageChars} characters`,
      );
    }
    const { memory } = this.options;
    const eventKey = turnId(message.channel, message.eventId);
    // Identity lives in the same store as memory: Redis away is `memory_unavailable` (try again).
    const personId = await this.wrapMemory(() =>
      this.options.identity.resolve(message.channel, message.userId),
    );

    const command = parseCommand(text);
    // The history is read alongside the claim (one round trip instead of two on Redis); it is
    // only used once the claim is ours.
    const historyRead = command
      ? Promise.resolve(undefined)
      : this.wrapMemory(() =>
          Promise.all([
            memory.recentTurns(personId, this.options.context.maxTurns),
            memory.summary(personId),
          ]),
        );
    historyRead.catch(() => {}); // Awaited below, once the claim is known to be ours.
    const claim = await this.wrapMemory(() => memory.claimEvent(eventKey));
    if (claim.status === 'answered') {
      return { text: claim.reply, duplicate: true, kind: 'agent', personId };
    }
    if (claim.status === 'in_progress') {
      throw new AgentError('event_in_progress', `event ${message.eventId} is being answered already`);
    }

    const stopKeeping = memory.keepClaim(eventKey);
    const settlements: Promise<void>[] = [];
    try {
      if (command) {
        const handler = this.commandsByName.get(command.name);
        const result = handler
          ? await handler.run({
              personId,
              channel: message.channel,
              userId: message.userId,
              args: command.args,
            })
          : { text: `Unknown command /${command.name}. Try /help.` };
        await this.wrapMemory(() =>
          memory.commit({
            eventKey,
            reply: result.text,
            ...(result.resetContext ? { reset: { reset: true as const, personId, at: this.now() } } : {}),
          }),
        );
        return { text: result.text, duplicate: false, kind: 'command', personId };
      }

      const result = await this.agentTurn(
        { personId, channel: message.channel, userId: message.userId },
        text,
        await historyRead,
        options,
        settlements,
      );
      // The reply is stored while the cost settles: one Redis round trip for both, and both are
      // done before anyone sees the reply.
      const stored = this.wrapMemory(() =>
        memory.commit({
          eventKey,
          reply: result.text,
          turn: {
            id: randomUUID(),
            personId,
            channel: message.channel,
            user: text,
            assistant: result.text,
            at: this.now(),
          },
        }),
      );
      await Promise.all([stored, ...settlements]);
      return { text: result.text, duplicate: false, kind: 'agent', personId, providerId: result.providerId };
    } catch (error) {
      // Give the event back so the platform's (or the person's) retry is answered.
      await memory.releaseEvent(eventKey).catch((releaseError: unknown) => {
        options.logger.warn({ err: releaseError, eventKey }, 'could not release an event claim');
      });
      throw error;
    } finally {
      // A failed turn's earlier calls (tool rounds) still cost: settled before the error is seen.
      await Promise.all(settlements);
      stopKeeping();
    }
  }

  private async agentTurn(
    who: ToolContext,
    text: string,
    history: [Turn[], MemorySummary | undefined] | undefined,
    options: HandleOptions & { logger: Logger },
    /** Where the gateway leaves the settling of each call's cost, for `process` to await. */
    settlements: Promise<void>[],
  ): Promise<ChatResult> {
    const { context, tools } = this.options;
    const [turns, summary] = history ?? [[], undefined];
    // Turns older than the window reach the model only through their summary, if compacted.
    const system = withSummary(this.options.systemPrompt, summary?.text);
    const request: ChatRequest = {
      system,
      messages: buildContext(turns, text, system, context),
      ...(tools ? { tools: tools.definitions } : {}),
    };
    const turnDeadline = new LinkedAbort([options.signal], this.options.turnTimeoutMs);
    try {
      return await this.callRounds(request, who, options, {
        signal: turnDeadline.signal,
        meta: { personId: who.personId, channel: who.channel, logger: options.logger },
        settlements,
      });
    } finally {
      turnDeadline.dispose();
    }
  }

  /** Model calls until one answers without tool calls (or the rounds run out). */
  private async callRounds(
    request: ChatRequest,
    who: ToolContext,
    options: HandleOptions & { logger: Logger },
    call: CallOptions,
  ): Promise<ChatResult> {
    const { tools } = this.options;
    const provider = this.options.provider();
    for (let round = 1; ; round += 1) {
      const result = await this.callProvider(provider, request, call, options);
      if (!tools || !result.toolCalls?.length) return result;
      if (round > MAX_TOOL_ROUNDS) {
        // A model that keeps calling tools gets no more; the person gets a reply, never nothing.
        return {
          ...result,
          text: result.text || `I stopped after ${MAX_TOOL_ROUNDS} rounds of tool calls without an answer.`,
        };
      }
      // The tool decides what it permits for this person; the model only gets its answer.
      request.messages.push({ role: 'assistant', content: result.text, toolCalls: result.toolCalls });
      for (const toolCall of result.toolCalls) {
        const content = await tools.run(toolCall, who).catch((error: unknown) => {
          options.logger.warn({ tool: toolCall.name, err: (error as Error).message }, 'tool failed');
          return JSON.stringify({ error: 'the tool failed; try again later' });
        });
        request.messages.push({ role: 'tool', toolCallId: toolCall.id, content });
      }
    }
  }

  private async callProvider(
    provider: ChatProvider,
    request: ChatRequest,
    call: CallOptions,
    options: HandleOptions,
  ): Promise<ChatResult> {
    if (!options.onText) return provider.complete(request, call);
    for await (const event of provider.stream(request, call)) {
      if (event.type === 'text') options.onText(event.text);
      else if (event.type === 'done') return event.result;
    }
    throw new AgentError(
      'provider_unavailable',
      `provider "${provider.id}" ended its stream without a result`,
    );
  }

  private async wrapMemory<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (isAgentError(error)) throw error;
      throw new AgentError('memory_unavailable', 'conversation memory is unavailable; nothing was stored', {
        cause: error,
      });
    }
  }
}
