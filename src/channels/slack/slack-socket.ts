import { type Logger as SlackLogger, SocketModeReceiver } from '@slack/bolt';
import { z } from 'zod';

/** What Socket Mode delivers: `events_api`, `slash_commands`, `interactive`, ... */
export interface SocketEnvelope {
  type: string;
  envelopeId: string | undefined;
  /** The same body HTTP mode receives (an event_callback, a command's fields). */
  body: unknown;
  retryNum: number | undefined;
}

/** How to answer an envelope: ack (optionally with a response payload), or leave it for Slack to redeliver. */
export type EnvelopeOutcome = { ack: true; payload?: Record<string, unknown> } | { ack: false };

export interface SlackSocketOptions {
  appToken: string;
  /** Web API root for apps.connections.open, which returns the WebSocket URL. */
  apiUrl: string;
  requestTimeoutMs: number;
  logger: SlackLogger;
  onEnvelope: (envelope: SocketEnvelope) => Promise<EnvelopeOutcome>;
  /** The connection dropped after it was open (not called for `close()` or a failed `open()`). */
  onDown: () => void;
}

type Ack = (payload?: Record<string, unknown>) => Promise<void>;

const slackEventArgs = z.object({
  type: z.string(),
  ack: z.custom<Ack>((value) => typeof value === 'function', 'ack must be a function'),
  envelope_id: z.string().optional(),
  body: z.unknown(),
  retry_num: z.number().optional(),
});

/** Slack sends `hello` within a second or two; longer means the socket is not working. */
const OPEN_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 2_000;
/**
 * How long `close({ drain: true })` waits for envelopes the agent is still taking. Accepting one
 * is a durable write, so this is ample; past it the socket closes anyway and Slack redelivers the
 * unacked envelopes on the next connection (the agent's dedupe recognises any it already took).
 */
const DRAIN_TIMEOUT_MS = 10_000;

/**
 * One Socket Mode connection through Bolt's `SocketModeReceiver` (its client does
 * apps.connections.open, the hello handshake, pings and pongs), without Bolt's `App`: the App
 * acks every Events API envelope before its listeners run, and an envelope must be acked only
 * after the agent has accepted it, or a crash in between loses the message.
 *
 * The client's own reconnect is off: when apps.connections.open fails on a network error during
 * a reconnect, that client leaves the rejection unhandled (which ends a Node process). The
 * adapter reconnects instead, with back-off, through `onDown` and `open`.
 */
export class SlackSocket {
  private readonly receiver: SocketModeReceiver;
  private isOpen = false;
  private closed = false;
  /** Envelopes handed to the agent and not acked yet. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: SlackSocketOptions) {
    this.receiver = new SocketModeReceiver({
      appToken: options.appToken,
      logger: options.logger,
      autoReconnectEnabled: false,
      installerOptions: {
        clientOptions: {
          slackApiUrl: options.apiUrl,
          // Without this the client retries apps.connections.open 100 times inside one call.
          retryConfig: { retries: 0 },
          timeout: options.requestTimeoutMs,
          // The original (axios) error carries the request's headers, the app token among them.
          attachOriginalToWebAPIRequestError: false,
        },
      },
    });
    const client = this.receiver.client;
    client.on('slack_event', (args: unknown) => {
      const parsed = slackEventArgs.safeParse(args);
      if (!parsed.success) return;
      const dispatched = this.dispatch(parsed.data);
      this.inFlight.add(dispatched);
      void dispatched.finally(() => this.inFlight.delete(dispatched));
    });
    client.on('disconnected', () => {
      if (!this.isOpen) return;
      this.isOpen = false;
      if (!this.closed) options.onDown();
    });
  }

  get connected(): boolean {
    return this.isOpen;
  }

  /** Connects once; rejects when it cannot (the caller retries). */
  async open(): Promise<void> {
    this.closed = false;
    const client = this.receiver.client;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        // Disconnecting makes the pending start() reject, so nothing is left half-open.
        void client.disconnect();
        reject(new Error(`no Socket Mode hello within ${OPEN_TIMEOUT_MS} ms`));
      }, OPEN_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.receiver.start(), timeout]);
    } finally {
      clearTimeout(timer);
    }
    // close() may have run while apps.connections.open was in flight; start() connected anyway.
    if (this.closed) {
      await this.disconnect();
      throw new Error('the Slack channel was stopped while connecting');
    }
    this.isOpen = true;
  }

  /**
   * Disconnects. With `drain` (a connection being replaced, e.g. by a rotated app token) it first
   * lets the envelopes the agent is taking finish and be acked on this socket, which is the only
   * one their acks can go out on: closed before that, Slack would redeliver them elsewhere, and
   * the agent would get events it already took. Envelopes that arrive while draining are taken too.
   */
  async close(options: { drain?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (options.drain) await this.drain(DRAIN_TIMEOUT_MS);
    this.isOpen = false;
    await this.disconnect();
  }

  private async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        // dispatch() never rejects.
        Promise.all([...this.inFlight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  private async disconnect(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // A dead peer never answers the close frame; do not hold the agent's shutdown for it.
    await Promise.race([
      this.receiver.client.disconnect(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  private async dispatch(args: z.infer<typeof slackEventArgs>): Promise<void> {
    try {
      const outcome = await this.options.onEnvelope({
        type: args.type,
        envelopeId: args.envelope_id,
        body: args.body,
        retryNum: args.retry_num,
      });
      if (outcome.ack) await args.ack(outcome.payload);
    } catch (error) {
      // The socket closed before the ack went out: Slack redelivers the envelope.
      this.options.logger.warn(`Socket Mode ack for ${args.envelope_id} failed: ${String(error)}`);
    }
  }
}
