import type { Logger } from 'pino';
import type { ChannelHub } from '../../channels/channel-hub.js';
import type { AgentConfig } from '../config/schema.js';
import type { IdentityStore } from '../identity/identity-store.js';

/**
 * How an alert reaches the owners: each `alerts.notify` chat, and each `alerts.owners` account on
 * the chat that person used last, whichever platform that is. Through the outbox like a reply,
 * so it is retried and fails over; `id` makes each copy's delivery idempotent.
 */
export function ownerAlertDelivery(deps: {
  hub: Pick<ChannelHub, 'notify'>;
  identity: Pick<IdentityStore, 'resolve' | 'addresses'>;
  alerts: Pick<AgentConfig['alerts'], 'notify' | 'owners'>;
  logger: Pick<Logger, 'warn'>;
}): (id: string, text: string) => Promise<void> {
  const { hub, identity, alerts, logger } = deps;
  return async (id, text) => {
    await Promise.all([
      ...alerts.notify.map((target) =>
        hub.notify(`${id}:${target.channel}:${target.conversation}`, target, text),
      ),
      ...alerts.owners.map(async (account) => {
        const split = account.indexOf(':');
        const personId = await identity.resolve(account.slice(0, split), account.slice(split + 1));
        const [latest] = await identity.addresses(personId);
        if (latest) await hub.notify(`${id}:${account}`, latest.address, text);
        else
          logger.warn(
            { owner: account },
            'an owner has never written to the agent; the alert cannot reach them',
          );
      }),
    ]);
  };
}
