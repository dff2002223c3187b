import type { Logger } from 'pino';
import type { HeldLease, LeaseHandlers } from '../core/cluster/lease-keeper.js';
import type {
  ChannelAdapter,
  ChannelEvent,
  ChannelHealth,
  ChannelName,
  ChannelSink,
  PublishedCommand,
  ReplyAddress,
  SendOptions,
} from './channel-adapter.js';
import type { ChannelsConfig } from './channels-config.js';

/** The lease as a leased channel uses it: contend, and release on stop. */
export interface ChannelLease extends HeldLease {
  start(handlers: LeaseHandlers): Promise<void>;
  stop(): Promise<void>;
  /** Releases the lease to another node and stays out of the contest for `pauseMs`. */
  handOver(reason: string, pauseMs: number): Promise<void>;
}

/** What one health check found or did. */
export type LeasedChannelCheck = 'connected' | 'standby' | 'disconnected' | 'handed over';

/** An event refused because this node no longer holds the platform's connection. */
export class NotLeaseHolderError extends Error {
  readonly code = 'not_lease_holder';
  constructor(channel: ChannelName) {
    super(`this node no longer holds the ${channel} connection`);
    this.name = 'NotLeaseHolderError';
  }
}

/**
 * A platform whose connection may be open only once across the servers (Telegram long polling, a
 * Discord gateway session, Slack Socket Mode), held by whichever node owns its lease.
 *
 * The node that wins the lease creates a fresh adapter and starts it; losing the lease stops it.
 * Every event it hands on is fenced first: the node confirms in Redis that its term is still
 * current, so a node that was paused past its TTL cannot accept events the new holder is also
 * receiving (and does not acknowledge them to the platform, which delivers them to the holder).
 *
 * Replies do not need the connection: every platform takes them over its REST API, so a second,
 * never-started adapter sends on every node, and either server's outbox worker can deliver.
 */
export class LeasedChannel implements ChannelAdapter {
  readonly name: ChannelName;
  private readonly sender: ChannelAdapter;
  private active: ChannelAdapter | undefined;
  private activeSince: number | undefined;
  /** While active: when the connection was first seen down (by a health check). */
  private downSince: number | undefined;

  constructor(
    private readonly options: {
      name: ChannelName;
      /** An adapter that is never started: it sends replies (over REST) on every node. */
      sender: ChannelAdapter;
      /** A new, unstarted adapter for this platform (one per term: adapters are single-use). */
      create: () => ChannelAdapter;
      lease: ChannelLease;
      logger: Logger;
      now?: () => number;
    },
  ) {
    this.name = options.name;
    this.sender = options.sender;
  }

  async start(sink: ChannelSink, commands: readonly PublishedCommand[]): Promise<void> {
    const { lease, logger, create } = this.options;
    const fenced: ChannelSink = {
      receive: async (event: ChannelEvent) => {
        if (!(await lease.confirm())) throw new NotLeaseHolderError(this.name);
        await sink.receive(event);
      },
    };
    await lease.start({
      acquired: async (term) => {
        const adapter = create();
        this.active = adapter;
        this.activeSince = (this.options.now ?? Date.now)();
        logger.info({ channel: this.name, fence: term.holder.fence }, 'this node now serves the channel');
        try {
          await adapter.start(fenced, commands);
        } catch (error) {
          this.active = undefined;
          this.activeSince = undefined;
          throw error;
        }
      },
      lost: async (reason) => {
        const adapter = this.active;
        this.active = undefined;
        this.activeSince = undefined;
        if (!adapter) return;
        logger.info({ channel: this.name, reason }, 'this node stops serving the channel');
        await adapter.stop();
      },
    });
  }

  /** Stops the connection, then releases the lease so the other node takes over at once. */
  stop(): Promise<void> {
    return this.options.lease.stop();
  }

  send(address: ReplyAddress, text: string, options?: SendOptions): Promise<void> {
    return this.sender.send(address, text, options);
  }

  async typing(address: ReplyAddress): Promise<void> {
    await this.sender.typing?.(address);
  }

  /**
   * The channel health check, run on every node: a node that holds the connection but has not
   * been connected to the platform for `afterMs` (its own route to the platform is broken, say)
   * hands it to another node that is up, and stays out for twice that long; if no other node took
   * it by then, it serves it again.
   */
  async checkHealth(afterMs: number, anotherNodeUp: boolean): Promise<LeasedChannelCheck> {
    const now = (this.options.now ?? Date.now)();
    if (!this.active) {
      this.downSince = undefined;
      return 'standby';
    }
    if (this.active.health().connected) {
      this.downSince = undefined;
      return 'connected';
    }
    this.downSince ??= now;
    if (now - this.downSince < afterMs || !anotherNodeUp) return 'disconnected';
    this.downSince = undefined;
    this.options.logger.warn(
      { channel: this.name, downForMs: afterMs },
      'cannot reach the platform from this node; handing the connection to another node',
    );
    await this.options.lease.handOver(`not connected for ${afterMs} ms`, afterMs * 2);
    return 'handed over';
  }

  /**
   * Rotated secrets reach both adapters: the sender (replies) and the connection this node holds,
   * which switches without giving up the lease. `create` must already read the new config, so a
   * connection opened in a later term uses them too.
   */
  async renewSecrets(channels: ChannelsConfig): Promise<void> {
    await Promise.all([this.sender.renewSecrets?.(channels), this.active?.renewSecrets?.(channels)]);
  }

  health(): ChannelHealth {
    const sending = this.sender.health();
    const sends = {
      consecutiveSendFailures: sending.consecutiveSendFailures,
      ...(sending.lastSendAt !== undefined ? { lastSendAt: sending.lastSendAt } : {}),
    };
    if (this.active) {
      return {
        ...this.active.health(),
        ...sends,
        role: 'active',
        ...(this.activeSince !== undefined ? { roleSince: this.activeSince } : {}),
      };
    }
    return {
      connected: false,
      ...sends,
      ...(sending.lastError !== undefined ? { lastError: sending.lastError } : {}),
      role: 'standby',
    };
  }
}
