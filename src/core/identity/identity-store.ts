import type { ReplyAddress } from '../../channels/channel-adapter.js';

/**
 * Accounts and persons. An account is one platform user (`telegram:42`); a person is the unit
 * memory belongs to. Every account is its own person until `/link` joins it to another
 * account's person, so the conversation continues on whichever platform the person uses.
 */
export interface IdentityResolver {
  resolve(channel: string, userId: string): Promise<string>;
}

export interface SeenAddress {
  account: string;
  address: ReplyAddress;
  at: number;
}

export type RedeemResult =
  | { status: 'linked'; personId: string; previousPersonId: string }
  | { status: 'already_linked'; personId: string }
  | { status: 'invalid_code' };

export interface IdentityStore extends IdentityResolver {
  readonly backend: 'log' | 'redis';
  open(): Promise<void>;
  close(): Promise<void>;
  /** A one-time code for `personId`, valid for `ttlMs`. */
  issueLinkCode(personId: string, ttlMs: number): Promise<string>;
  /** Joins the account to the code's person. A code works once; an expired one never. */
  redeemLinkCode(code: string, channel: string, userId: string): Promise<RedeemResult>;
  /** Returns the account to its own person. False when it was not linked. */
  unlink(channel: string, userId: string): Promise<boolean>;
  /** Remembers where the account was last heard from, for replies that must fail over. */
  touch(channel: string, userId: string, address: ReplyAddress, at: number): Promise<void>;
  /** Every address the person was heard from, most recent first. */
  addresses(personId: string): Promise<SeenAddress[]>;
}

export function accountId(channel: string, userId: string): string {
  return `${channel}:${userId}`;
}

/** Codes people type: no 0/O or 1/I/L to misread. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

export function newLinkCode(randomBytes: (n: number) => Uint8Array): string {
  const bytes = randomBytes(8);
  let code = '';
  // 31 symbols from a byte: the bias (256 % 31 = 8) is negligible for a 10-minute, one-use code.
  for (const byte of bytes) code += CODE_ALPHABET[byte % CODE_ALPHABET.length];
  return code;
}

/** People may type the code with spaces, dashes or lower case. */
export function normaliseLinkCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '');
}
