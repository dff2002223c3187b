import type { IdentityStore } from '../identity/identity-store.js';
import type { MemoryStore } from '../memory/memory-store.js';
import type { Command } from './command.js';

export const LINK_CODE_TTL_MS = 10 * 60_000;

/**
 * `/link` joins accounts on several platforms to one person, so the conversation (and replies
 * that must fail over) follow the person. Histories are never merged: the account that redeems
 * a code leaves its own earlier conversation behind, and is told so.
 */
export function createLinkCommands(deps: { identity: IdentityStore; memory: MemoryStore }): Command[] {
  const { identity, memory } = deps;
  return [
    {
      name: 'link',
      summary:
        'join your accounts on several platforms: /link gives a code, /link CODE on the other one uses it',
      run: async ({ personId, channel, userId, args }) => {
        if (args.length === 0) {
          const code = await identity.issueLinkCode(personId, LINK_CODE_TTL_MS);
          return {
            text: [
              `Your link code is ${code}. It works once, for 10 minutes.`,
              `Send "/link ${code}" from your account on another platform to continue this conversation there.`,
            ].join('\n'),
          };
        }
        const result = await identity.redeemLinkCode(args.join(''), channel, userId);
        if (result.status === 'invalid_code') {
          return {
            text: 'That code is unknown, already used or expired. Send /link on your other account for a new one.',
          };
        }
        if (result.status === 'already_linked')
          return { text: 'This account is already linked to that conversation.' };
        const left = (await memory.recentTurns(result.previousPersonId, 1_000)).length;
        return {
          text: [
            'Linked: this account now continues the same conversation as your other account.',
            left > 0
              ? `What you said here before (${left} turn${left === 1 ? '' : 's'}) stays separate and is no longer used as context; /unlink returns to it.`
              : 'Use /unlink to separate them again.',
          ].join('\n'),
        };
      },
    },
    {
      name: 'unlink',
      summary: 'separate this account from the conversation it was linked to',
      run: async ({ channel, userId }) =>
        (await identity.unlink(channel, userId))
          ? { text: 'Unlinked: this account has its own conversation again.' }
          : { text: 'This account is not linked to another one.' },
    },
  ];
}
