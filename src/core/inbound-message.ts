/** What every channel adapter turns a platform event into. */
export interface InboundMessage {
  /** The channel's name: `http`, `discord`, `telegram`, `slack`. */
  channel: string;
  /** The platform's own id for this event, used to answer it once. */
  eventId: string;
  /** The sender's id on that platform. */
  userId: string;
  text: string;
}

export interface Reply {
  text: string;
  /** True when this event was answered before and the stored reply is returned again. */
  duplicate: boolean;
  kind: 'agent' | 'command';
  personId: string;
  /** The provider that answered an agent turn. */
  providerId?: string;
}
