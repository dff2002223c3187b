import type { IdentityResolver } from '../core/identity/identity-store.js';

/**
 * Who may send and approve: the accounts in `wallet.owners`, and any account linked to the same
 * person as one of them (`/link`). Checked on every action, from the identity store as it is now,
 * so an `/unlink` takes effect at once; if identities cannot be read, the check throws (refuse).
 */
export class WalletOwners {
  constructor(
    private readonly owners: readonly string[],
    private readonly identity: IdentityResolver,
  ) {}

  async isOwner(channel: string, userId: string, personId: string): Promise<boolean> {
    if (this.owners.includes(`${channel}:${userId}`)) return true;
    for (const owner of this.owners) {
      const at = owner.indexOf(':');
      if ((await this.identity.resolve(owner.slice(0, at), owner.slice(at + 1))) === personId) return true;
    }
    return false;
  }
}
