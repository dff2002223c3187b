import { formatAmount, parseAmount } from './amount.js';
import { clip } from './clip.js';
import { isAddress, SOL, SOL_DECIMALS, type WalletConfig } from './wallet-config.js';

/**
 * The owner's rules, applied by code and never by the model. Everything a transfer needs to be
 * judged is passed in; nothing here reads a conversation, memory or a prompt, which is why no
 * text anyone writes can change a verdict.
 */
export type RefusalCode =
  | 'not_owner'
  | 'unknown_token'
  | 'bad_amount'
  | 'bad_recipient'
  | 'not_allowlisted'
  | 'over_transaction_cap'
  | 'over_daily_cap'
  | 'over_autonomous_daily_cap'
  | 'no_limits'
  | 'approval_expired'
  | 'not_pending'
  | 'policy_unavailable'
  | 'cluster_mismatch';

export class WalletRefusal extends Error {
  constructor(
    readonly code: RefusalCode,
    message: string,
  ) {
    super(message);
    this.name = 'WalletRefusal';
  }
}

export interface TokenLimits {
  perTransaction: bigint;
  perDay: bigint;
  autonomousPerTransaction: bigint;
  autonomousPerDay: bigint;
}

export interface TokenRule {
  symbol: string;
  mint?: string;
  decimals: number;
  limits?: TokenLimits;
}

export interface TransferRequest {
  token: string;
  amount: string;
  recipient: string;
  /** An owner's explicit command, or the model's proposal. */
  origin: 'command' | 'model';
  requesterIsOwner: boolean;
}

export type Verdict =
  | { kind: 'execute'; token: TokenRule; units: bigint; autonomous: boolean }
  | { kind: 'needs_approval'; token: TokenRule; units: bigint; reason: string };

/** Owner's command -> execute; model within the autonomous sub-limit -> execute; model otherwise -> approval. */
export class WalletPolicy {
  private readonly tokens: Map<string, TokenRule>;
  private readonly allowlist: ReadonlySet<string>;

  constructor(
    private readonly config: Pick<WalletConfig, 'tokens' | 'limits' | 'allowlist' | 'autonomy'>,
    private readonly walletAddress: string,
  ) {
    this.tokens = new Map<string, TokenRule>();
    for (const token of [{ symbol: SOL, decimals: SOL_DECIMALS }, ...config.tokens]) {
      const limits = config.limits[token.symbol];
      this.tokens.set(token.symbol, {
        ...token,
        ...(limits ? { limits: parseLimits(limits, token.decimals) } : {}),
      });
    }
    this.allowlist = new Set(config.allowlist);
  }

  token(symbol: string): TokenRule | undefined {
    return this.tokens.get(symbol.toUpperCase());
  }

  tokenList(): TokenRule[] {
    return [...this.tokens.values()];
  }

  /** Judges a request; throws `WalletRefusal` when no one may make this transfer. */
  judge(request: TransferRequest): Verdict {
    if (request.origin === 'command' && !request.requesterIsOwner) {
      throw new WalletRefusal('not_owner', 'only the wallet owners may send');
    }
    const token = this.token(request.token);
    if (!token) {
      const known = this.tokenList()
        .map((t) => t.symbol)
        .join(', ');
      throw new WalletRefusal(
        'unknown_token',
        `"${clip(request.token, 60)}" is not a token this wallet sends (${known})`,
      );
    }
    const parsed = parseAmount(request.amount, token.decimals);
    if (!parsed.ok) throw new WalletRefusal('bad_amount', parsed.message);
    if (parsed.units === 0n) throw new WalletRefusal('bad_amount', 'the amount must be more than zero');
    if (!isAddress(request.recipient)) {
      throw new WalletRefusal('bad_recipient', `"${clip(request.recipient, 60)}" is not a Solana address`);
    }
    if (request.recipient === this.walletAddress) {
      throw new WalletRefusal('bad_recipient', 'the recipient is this wallet itself');
    }
    if (!this.allowlist.has(request.recipient)) {
      throw new WalletRefusal(
        'not_allowlisted',
        `${request.recipient} is not on the wallet's recipient allowlist (wallet.allowlist)`,
      );
    }
    const limits = token.limits;
    if (!limits)
      throw new WalletRefusal('no_limits', `${token.symbol} has no limits set, so it cannot be sent`);
    if (parsed.units > limits.perTransaction) {
      throw new WalletRefusal(
        'over_transaction_cap',
        `${formatAmount(parsed.units, token.decimals)} ${token.symbol} is over the per-transfer cap of ` +
          `${formatAmount(limits.perTransaction, token.decimals)}`,
      );
    }
    if (request.origin === 'command')
      return { kind: 'execute', token, units: parsed.units, autonomous: false };
    const mayActAlone = request.requesterIsOwner || !this.config.autonomy.ownersOnly;
    if (mayActAlone && parsed.units <= limits.autonomousPerTransaction) {
      return { kind: 'execute', token, units: parsed.units, autonomous: true };
    }
    return {
      kind: 'needs_approval',
      token,
      units: parsed.units,
      reason: mayActAlone ? 'it is over the autonomous limit' : 'autonomous transfers are for owners only',
    };
  }
}

function parseLimits(limits: WalletConfig['limits'][string], decimals: number): TokenLimits {
  const units = (text: string) => {
    const parsed = parseAmount(text, decimals);
    // The config schema has already checked each limit; this cannot fail for a loaded config.
    if (!parsed.ok) throw new WalletRefusal('policy_unavailable', parsed.message);
    return parsed.units;
  };
  return {
    perTransaction: units(limits.perTransaction),
    perDay: units(limits.perDay),
    autonomousPerTransaction: units(limits.autonomousPerTransaction),
    autonomousPerDay: units(limits.autonomousPerDay),
  };
}
