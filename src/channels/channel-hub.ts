import type { Logger } from 'pino';
import { isAgentError } from '../core/errors.js';
import type { IdentityStore } from '../core/identity/identity-store.js';
import { type Pipeline, turnId } from '../core/pipeline.js';
import type { DurableQueue, JobResult, QueuedJob } from '../jobs/durable-queue.js';
import type {
  ChannelAdapter,
  ChannelEvent,
  ChannelHealth,
  ChannelName,
  ChannelSink,
  PublishedCommand,
  ReplyAddress,
} from './channel-adapter.js';
import type { ChannelsConfig } from './channels-config.js';
import type { OutboundReply, ReplyRouter } from './reply-router.js';

/** The sender of owner alerts: no person, so a failed alert has no other platform to go to. */
const OWNER_ALERTS = 'owner-alerts';

/** Errors after which the same event is simply tried again later, rather than answered. */
const RETRY_LATER = new Set(['memory_unavailable', 'shutting_down', 'event_in_progress']);

/** Platforms hide a typing indicator after about 5-10 s: renew it while a turn runs. */
const TYPING_EVERY_MS = 4500;
/**
 * Typing is shown only for a turn still running after this long: a quick reply needs none, and
 * each indicator is an API call against the platform's rate limit (Discord's 50 a second would
 * otherwise go half to typing).
 */
const TYPING_AFTER_MS = 800;

export interface ChannelStatus extends ChannelHealth {
  /** `running`, or `failed` when the adapter could not start at all (bad configuration). */
  state: 'running' | 'failed';
}

/**
 * Joins the platform adapters to the core: inbound events go into a durable inbox, a worker runs
 * each through the pipeline, and the reply goes into a durable outbox that the reply router
 * delivers (retrying, and failing over to the person's other platforms). An event a platform
 * handed over is therefore answered even if the process dies in between.
 */
export class ChannelHub {
  private readonly adapters: Map<ChannelName, ChannelAdapter>;
  private readonly failed = new Map<ChannelName, string>();
  /** Per account: the turn in progress, so one person's messages are answered in order. */
  private readonly lanes = new Map<string, Promise<unknown>>();
  private readonly now: () => number;

  constructor(
    private readonly options: {
      adapters: readonly ChannelAdapter[];
      pipeline: Pipeline;
      identity: IdentityStore;
      inbox: DurableQueue<ChannelEvent>;
      outbox: DurableQueue<OutboundReply>;
      router: ReplyRouter;
      commands: readonly PublishedCommand[];
      logger: Logger;
      now?: () => number;
    },
  ) {
    this.adapters = new Map(options.adapters.map((a) => [a.name, a]));
    this.now = options.now ?? Date.now;
  }

  get channelNames(): ChannelName[] {
    return [...this.adapters.keys()];
  }

  async start(): Promise<void> {
    const { inbox, outbox, router, logger, commands } = this.options;
    await outbox.start(router.deliver);
    await inbox.start((job) =>
      this.inLane(`${job.data.address.channel}:${job.data.userId}`, () => this.answer(job)),
    );
    const sink: ChannelSink = {
      receive: async (event) => {
        // The inbox job, the turn and the outbox job are all named by the event key: its `turn`.
        const turn = turnId(event.address.channel, event.eventId);
        logger.debug({ turn, channel: event.address.channel, user: event.userId }, 'message received');
        await inbox.add(turn, event);
      },
    };
    // Each adapter on its own: one that cannot start never stops the others.
    await Promise.all(
      [...this.adapters.values()].map(async (adapter) => {
        try {
          await adapter.start(sink, commands);
          logger.info({ channel: adapter.name }, 'channel started');
        } catch (error) {
          this.failed.set(adapter.name, (error as Error).message);
          logger.error({ channel: adapter.name, err: error }, 'channel could not start; the others carry on');
        }
      }),
    );
  }

  /** Stops taking platform events. In-flight turns are finished by the pipeline's drain. */
  async stopAdapters(): Promise<void> {
    await Promise.allSettled([...this.adapters.values()].map((a) => a.stop()));
  }

  /**
   * Hands rotated platform secrets to every adapter. One platform failing to take them does not
   * stop the others; resolves with the platforms that failed and why (the old secrets stay in use
   * there, and the next rotation check tries again).
   */
  async renewSecrets(channels: ChannelsConfig): Promise<{ channel: ChannelName; error: string }[]> {
    const adapters = [...this.adapters.values()];
    const results = await Promise.allSettled(adapters.map((a) => a.renewSecrets?.(channels)));
    return results.flatMap((result, i) =>
      result.status === 'rejected'
        ? [
            {
              channel: (adapters[i] as ChannelAdapter).name,
              error: String((result.reason as Error)?.message ?? result.reason),
            },
          ]
        : [],
    );
  }

  /** After the pipeline drained: lets running jobs finish their writes, then closes the queues. */
  async close(): Promise<void> {
    await this.options.inbox.close();
    await this.options.outbox.close();
  }

  status(): Record<string, ChannelStatus> {
    const result: Record<string, ChannelStatus> = {};
    for (const [name, adapter] of this.adapters) {
      const failure = this.failed.get(name);
      result[name] = failure
        ? { ...adapter.health(), connected: false, lastError: failure, state: 'failed' }
        : { ...adapter.health(), state: 'running' };
    }
    return result;
  }

  /**
   * Sends an operational message (an alert for the owners) to a chat through the outbox, so it
   * is durable and retried like a reply. `id` names it once: adding the same id again does nothing.
   */
  notify(id: string, address: ReplyAddress, text: string): Promise<void> {
    return this.options.outbox.add(id, { personId: OWNER_ALERTS, address, text });
  }

  async pending(): Promise<{ inbox: number; outbox: number }> {
    return { inbox: await this.options.inbox.pending(), outbox: await this.options.outbox.pending() };
  }

  /** The inbox's job handler: one platform event through the pipeline, its reply into the outbox. */
  private async answer(job: QueuedJob<ChannelEvent>): Promise<JobResult> {
    const { pipeline, identity, outbox } = this.options;
    const event = job.data;
    const { channel } = event.address;
    const logger = this.options.logger.child({ turn: job.id });
    const stopTyping = this.keepTyping(event);
    try {
      let text: string;
      let personId: string;
      try {
        const reply = await pipeline.handle(
          {
            channel,
            eventId: event.eventId,
            userId: event.userId,
            text: event.text,
          },
          { logger },
        );
        text = reply.text;
        personId = reply.personId;
      } catch (error) {
        if (isAgentError(error) && RETRY_LATER.has(error.code)) throw error;
        // Anything else (no provider answered, a message too long) is told to the person.
        personId = await identity.resolve(channel, event.userId);
        text = `Sorry, I could not answer that: ${isAgentError(error) ? error.message : 'an internal error occurred'}.`;
        if (!isAgentError(error)) logger.error({ err: error, event: job.id }, 'turn failed');
      }
      await identity.touch(channel, event.userId, event.address, this.now());
      await outbox.add(job.id, { personId, address: event.address, text, turn: job.id });
      return { done: true };
    } finally {
      stopTyping();
    }
  }

  /**
   * Runs `work` after the account's earlier work, so the second of two quick messages is answered
   * with the first one's turn in its context (jobs of different accounts still run at once).
   */
  private async inLane<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.lanes.get(key) ?? Promise.resolve();
    const current = previous.catch(() => {}).then(work);
    this.lanes.set(key, current);
    try {
      return await current;
    } finally {
      if (this.lanes.get(key) === current) this.lanes.delete(key);
    }
  }

  private keepTyping(event: ChannelEvent): () => void {
    const adapter = this.adapters.get(event.address.channel);
    if (!adapter?.typing) return () => {};
    const type = () => void adapter.typing?.(event.address).catch(() => {});
    let every: NodeJS.Timeout | undefined;
    const first = setTimeout(() => {
      type();
      every = setInterval(type, TYPING_EVERY_MS);
      every.unref();
    }, TYPING_AFTER_MS);
    first.unref();
    return () => {
      clearTimeout(first);
      clearInterval(every);
    };
  }
}
