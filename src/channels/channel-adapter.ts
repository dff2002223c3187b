/**
 * The one seam every chat platform plugs into. An adapter turns platform events into
 * `InboundMessage`s for the core pipeline and delivers replies back; it knows nothing of LLMs or
 * memory.
 */
export interface ChannelHealth {
  connected: boolean;
  /** Epoch ms of the last inbound event, if any. */
  lastEventAt?: number;
  /** Epoch ms of the last reply delivered, if any. */
  lastSendAt?: number;
  consecutiveSendFailures: number;
  lastError?: string;
}

export interface ChannelAdapter {
  readonly name: string;
  start(): Promise<void>;
  /** Stops taking new events; in-flight ones are drained by the agent. */
  stop(): Promise<void>;
  health(): ChannelHealth;
}
