import type { Logger } from 'pino';
import type { IdentityStore } from '../core/identity/identity-store.js';
import type { JobResult, QueuedJob } from '../jobs/durable-queue.js';
import { retryDelayMs } from '../jobs/durable-queue.js';
import {
  type ChannelAdapter,
  type ChannelName,
  ChannelSendError,
  type ReplyAddress,
} from './channel-adapter.js';
import type { OutboxConfig } from './channels-config.js';

/** One reply waiting in the outbox. Plain JSON: it is stored. */
export interface OutboundReply {
  personId: string;
  address: ReplyAddress;
  text: string;
  /** The `turn` id of the message this answers, for the delivery's log lines (none for alerts). */
  turn?: string;
}

/** `resent`: delivered by a run that followed a crash mid-delivery, so it may have arrived twice. */
export type DeliveryOutcome = 'sent' | 'resent' | 'failed_over' | 'retry' | 'lost';

const PLATFORM_NAMES: Record<ChannelName, string> = {
  http: 'The web chat',
  discord: 'Discord',
  telegram: 'Telegram',
  slack: 'Slack',
};

/**
 * Decides where each reply in the outbox goes. A reply goes to the channel it came from; a
 * failed send is retried with back-off (no sooner than the platform's retry-after). Once that
 * channel has been failing for `failoverAfterMs` (or refuses the reply outright), the reply goes
 * to the person's most recently used other channel, with one line saying why. A channel that
 * reconnects (or delivers again) is used again at once.
 */
export class ReplyRouter {
  /** Per channel: when its current run of failed sends began. */
  private readonly failingSince = new Map<ChannelName, number>();
  private readonly adapters: Map<ChannelName, ChannelAdapter>;

  constructor(
    private readonly options: {
      adapters: readonly ChannelAdapter[];
      identity: IdentityStore;
      config: OutboxConfig;
      logger: Logger;
      onOutcome?: (channel: ChannelName, outcome: DeliveryOutcome) => void;
      now?: () => number;
    },
  ) {
    this.adapters = new Map(options.adapters.map((a) => [a.name, a]));
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The outbox's job handler. */
  readonly deliver = async (job: QueuedJob<OutboundReply>): Promise<JobResult> => {
    const { config } = this.options;
    const { personId, address, text, turn } = job.data;
    const logger = turn ? this.options.logger.child({ turn }) : this.options.logger;
    const now = this.now();
    if (now - job.addedAt > config.giveUpAfterMs) {
      logger.error(
        { reply: job.id, channel: address.channel, attempts: job.attempt },
        'reply lost: gave up delivering it',
      );
      this.options.onOutcome?.(address.channel, 'lost');
      return { done: true };
    }

    const primary = this.adapters.get(address.channel);
    let failover = primary === undefined || this.isDown(address.channel, now);
    let retryAfterMs = 0;
    if (primary && !failover) {
      try {
        await primary.send(address, text, { replyId: job.id, mayRepeat: job.interrupted === true });
        this.up(address.channel);
        logger.debug({ reply: job.id, channel: address.channel, attempt: job.attempt }, 'reply delivered');
        if (job.interrupted) {
          // Telegram offers no way to ask whether the earlier run's send landed, so it may now be
          // there twice; Discord's nonce dedupes, and Slack skipped the parts it found posted.
          logger.warn(
            { reply: job.id, channel: address.channel },
            'reply sent again after a crash cut off its delivery; it may have arrived twice',
          );
        }
        this.options.onOutcome?.(address.channel, job.interrupted ? 'resent' : 'sent');
        return { done: true };
      } catch (error) {
        const sendError = asSendError(error);
        retryAfterMs = sendError.retryAfterMs ?? 0;
        // A permanent refusal is about this conversation (bot blocked, chat gone), not the channel.
        if (!sendError.permanent) this.down(address.channel, now);
        failover = sendError.permanent || this.isDown(address.channel, now);
        logger.warn(
          { reply: job.id, channel: address.channel, attempt: job.attempt, err: sendError.message, failover },
          'reply not delivered',
        );
      }
    }

    if (failover && (await this.sendElsewhere(job, personId, address, text, logger))) return { done: true };
    this.options.onOutcome?.(address.channel, 'retry');
    const backoff = retryDelayMs(job.attempt, config);
    // Come back no later than the moment the channel counts as down, to fail over on time.
    const untilDown = this.msUntilDown(address.channel, now);
    return { retryInMs: Math.max(retryAfterMs, Math.min(backoff, untilDown ?? backoff)) };
  };

  /** The person's other channels, most recently used first; true once one took the reply. */
  private async sendElsewhere(
    job: QueuedJob<OutboundReply>,
    personId: string,
    address: ReplyAddress,
    text: string,
    logger: Logger,
  ): Promise<boolean> {
    const { identity } = this.options;
    const now = this.now();
    const seen = await identity.addresses(personId);
    for (const { address: other } of seen) {
      if (other.channel === address.channel) continue;
      const adapter = this.adapters.get(other.channel);
      if (!adapter || this.isDown(other.channel, now)) continue;
      const why = `(${PLATFORM_NAMES[address.channel]} is unreachable right now, so this reply comes here.)`;
      try {
        await adapter.send({ channel: other.channel, conversation: other.conversation }, `${why}\n${text}`);
        this.up(other.channel);
        logger.info(
          { reply: job.id, from: address.channel, to: other.channel },
          'reply failed over to another channel',
        );
        this.options.onOutcome?.(address.channel, 'failed_over');
        return true;
      } catch (error) {
        const sendError = asSendError(error);
        if (!sendError.permanent) this.down(other.channel, now);
        logger.warn(
          { reply: job.id, channel: other.channel, err: sendError.message },
          'failover send failed',
        );
      }
    }
    return false;
  }

  /** Failing for at least `failoverAfterMs`, and not reconnected since the failures began. */
  isDown(channel: ChannelName, now: number): boolean {
    const since = this.failingSince.get(channel);
    if (since === undefined) return false;
    const reconnectedAt = this.adapters.get(channel)?.health().connectedSince;
    if (reconnectedAt !== undefined && reconnectedAt > since) {
      this.failingSince.delete(channel);
      return false;
    }
    return now - since >= this.options.config.failoverAfterMs;
  }

  private msUntilDown(channel: ChannelName, now: number): number | undefined {
    const since = this.failingSince.get(channel);
    return since === undefined ? undefined : Math.max(1, since + this.options.config.failoverAfterMs - now);
  }

  private down(channel: ChannelName, now: number): void {
    if (!this.failingSince.has(channel)) this.failingSince.set(channel, now);
  }

  private up(channel: ChannelName): void {
    this.failingSince.delete(channel);
  }
}

function asSendError(error: unknown): ChannelSendError {
  if (error instanceof ChannelSendError) return error;
  return new ChannelSendError(error instanceof Error ? error.message : String(error), { cause: error });
}
