import type { Command, CommandContext } from '../core/commands/command.js';
import { formatAmount } from './amount.js';
import type { WalletOwners } from './wallet-owners.js';
import { WalletRefusal } from './wallet-policy.js';
import { describeIntent, type WalletService } from './wallet-service.js';

export interface WalletCommandDeps {
  wallet: WalletService;
  owners: WalletOwners;
  /** Whether people who are not owners may see the address and balance. */
  publicRead: boolean;
}

const USAGE = [
  '/wallet address — the wallet address',
  '/wallet balance — SOL and token balances',
  '/wallet send <amount> <token> <recipient> — owners only, within the caps and allowlist',
  '/wallet pending — transfers waiting for approval',
  '/wallet approve <id> | /wallet reject <id> — owners only',
  '/wallet history — recent transfers',
].join('\n');

/** `/wallet …` on every channel. Refusals are answered with their reason; nothing is half-done. */
export function createWalletCommand(deps: WalletCommandDeps): Command {
  return {
    name: 'wallet',
    summary: "the agent's Solana wallet: address, balance, send, approve (try /wallet help)",
    async run(ctx) {
      try {
        return { text: await walletCommand(deps, ctx) };
      } catch (error) {
        if (error instanceof WalletRefusal) return { text: `Refused (${error.code}): ${error.message}.` };
        throw error;
      }
    },
  };
}

async function walletCommand(deps: WalletCommandDeps, ctx: CommandContext): Promise<string> {
  const { wallet } = deps;
  const [sub = 'help', ...rest] = ctx.args;
  const owner = () =>
    deps.owners.isOwner(ctx.channel, ctx.userId, ctx.personId).catch(() => {
      throw new WalletRefusal('policy_unavailable', 'the wallet cannot check who its owners are right now');
    });
  const mayRead = async () => {
    if (!deps.publicRead && !(await owner()))
      throw new WalletRefusal('not_owner', 'only the wallet owners may see this');
  };
  switch (sub.toLowerCase()) {
    case 'address':
      await mayRead();
      return `Wallet address: ${wallet.address}`;
    case 'balance': {
      await mayRead();
      const balances = await wallet.balances();
      return balances.map((b) => `${formatAmount(b.units, b.token.decimals)} ${b.token.symbol}`).join('\n');
    }
    case 'send': {
      if (rest.length !== 3) return 'Usage: /wallet send <amount> <token> <recipient>';
      const [amount, token, recipient] = rest as [string, string, string];
      const intent = await wallet.request({
        requester: { personId: ctx.personId, channel: ctx.channel, userId: ctx.userId },
        requesterIsOwner: await owner(),
        origin: 'command',
        token,
        amount,
        recipient,
      });
      return describeIntent(intent);
    }
    case 'pending': {
      await mayRead();
      const pending = await wallet.pending();
      if (pending.length === 0) return 'No transfers are waiting for approval.';
      return pending
        .map(
          (i) =>
            `${describeIntent(i)}; proposed by ${i.origin === 'model' ? 'the agent' : i.requester.channel}` +
            `${i.memo ? ` because "${i.memo}"` : ''}; expires ${new Date(i.approvalExpiresAt ?? 0).toISOString()}`,
        )
        .join('\n');
    }
    case 'approve':
    case 'reject': {
      const id = rest[0];
      if (!id || rest.length !== 1) return `Usage: /wallet ${sub} <id>`;
      const isOwner = await owner();
      const intent =
        sub === 'approve'
          ? await wallet.approve(id, `${ctx.channel}:${ctx.userId}`, isOwner)
          : await wallet.reject(id, isOwner);
      return describeIntent(intent);
    }
    case 'history': {
      await mayRead();
      const recent = await wallet.history(10);
      return recent.length === 0 ? 'No transfers yet.' : recent.map(describeIntent).join('\n');
    }
    default:
      return USAGE;
  }
}
