/**
 * Maps a platform account to a person, the unit that memory belongs to. Accounts are their own
 * person until linking (the channels issue) joins several accounts to one.
 */
export interface IdentityResolver {
  resolve(channel: string, userId: string): Promise<string>;
}

export class AccountIdentityResolver implements IdentityResolver {
  async resolve(channel: string, userId: string): Promise<string> {
    return `${channel}:${userId}`;
  }
}
