import { z } from 'zod';
import type { ToolContext, TurnTools } from '../core/tools/turn-tools.js';
import { formatAmount } from './amount.js';
import type { WalletOwners } from './wallet-owners.js';
import { WalletRefusal } from './wallet-policy.js';
import { describeIntent, type WalletService } from './wallet-service.js';

const amountText = z.union([z.string(), z.number().transform(String)]);
const proposeArgs = z.object({
  token: z.string().min(1).max(20),
  amount: amountText,
  recipient: z.string().min(1).max(100),
  reason: z.string().max(500).optional(),
});

export interface WalletToolDeps {
  wallet: WalletService;
  owners: WalletOwners;
  publicRead: boolean;
}

/**
 * What the model may do with the wallet: read the balance and *propose* transfers. A proposal is
 * judged by the same policy as a command, with `origin: "model"`: it executes on its own only
 * inside the autonomous sub-limit, to an allowlisted recipient; anything else waits for an owner's
 * `/wallet approve`, which the model cannot issue (its output is never read as a command).
 */
export function createWalletTools(deps: WalletToolDeps): TurnTools {
  return {
    definitions: [
      {
        name: 'wallet_balance',
        description: "The agent's Solana wallet address and balances (SOL and configured tokens).",
        parameters: { type: 'object', properties: {}, additionalProperties: false },
      },
      {
        name: 'propose_transfer',
        description:
          'Propose sending tokens from the agent wallet. Small transfers to approved recipients may execute at once; ' +
          'others wait for an owner to approve. Amounts are decimal strings such as "0.25".',
        parameters: {
          type: 'object',
          properties: {
            token: { type: 'string', description: 'SOL or a configured token symbol' },
            amount: { type: 'string', description: 'decimal amount in whole tokens, e.g. "0.1"' },
            recipient: { type: 'string', description: 'base58 Solana address' },
            reason: { type: 'string', description: 'why, shown to the owner who approves' },
          },
          required: ['token', 'amount', 'recipient'],
          additionalProperties: false,
        },
      },
    ],
    async run(call, context) {
      try {
        if (call.name === 'wallet_balance') return await balance(deps, context);
        if (call.name === 'propose_transfer') return await propose(deps, call.arguments, context);
        return JSON.stringify({ error: `unknown tool ${call.name}` });
      } catch (error) {
        if (error instanceof WalletRefusal)
          return JSON.stringify({ status: 'refused', code: error.code, reason: error.message });
        throw error;
      }
    },
  };
}

async function balance(deps: WalletToolDeps, context: ToolContext): Promise<string> {
  if (!deps.publicRead && !(await deps.owners.isOwner(context.channel, context.userId, context.personId))) {
    throw new WalletRefusal('not_owner', 'the wallet balance is shown to its owners only');
  }
  const balances = await deps.wallet.balances();
  return JSON.stringify({
    address: deps.wallet.address,
    balances: balances.map((b) => ({
      token: b.token.symbol,
      amount: formatAmount(b.units, b.token.decimals),
    })),
  });
}

async function propose(deps: WalletToolDeps, argsText: string, context: ToolContext): Promise<string> {
  let raw: unknown;
  try {
    raw = JSON.parse(argsText);
  } catch {
    throw new WalletRefusal('bad_amount', 'the arguments are not JSON');
  }
  const args = proposeArgs.safeParse(raw);
  if (!args.success)
    throw new WalletRefusal('bad_amount', `bad arguments: ${args.error.issues[0]?.message ?? 'invalid'}`);
  const intent = await deps.wallet.request({
    requester: context,
    requesterIsOwner: await deps.owners.isOwner(context.channel, context.userId, context.personId),
    origin: 'model',
    token: args.data.token,
    amount: args.data.amount,
    recipient: args.data.recipient,
    ...(args.data.reason ? { memo: args.data.reason } : {}),
  });
  return JSON.stringify({ status: intent.status, id: intent.id, summary: describeIntent(intent) });
}
