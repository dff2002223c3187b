import { clip } from './clip.js';

/**
 * Amounts as people write them ("0.25") to integer base units (lamports, token base units) and
 * back. Everything is bigint: a float cannot hold 0.1 SOL exactly, and a wallet must not round.
 */
export type ParsedAmount = { ok: true; units: bigint } | { ok: false; message: string };

/** Larger than any SPL supply (u64): anything bigger is a typo, not a transfer. */
const MAX_UNITS = (1n << 64n) - 1n;

export function parseAmount(text: string, decimals: number): ParsedAmount {
  const trimmed = text.trim();
  const match = /^(\d+)(?:\.(\d+))?$/.exec(trimmed);
  if (!match) {
    return {
      ok: false,
      message: `"${clip(trimmed, 40)}" is not an amount: write a positive decimal number such as 0.5`,
    };
  }
  const whole = match[1] as string;
  const fraction = match[2] ?? '';
  if (fraction.length > decimals) {
    return {
      ok: false,
      message: `"${clip(trimmed, 40)}" has ${fraction.length} decimals; this token has ${decimals}`,
    };
  }
  const units = BigInt(whole) * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, '0') || '0');
  if (units > MAX_UNITS)
    return { ok: false, message: `"${clip(trimmed, 40)}" is more than any token supply` };
  return { ok: true, units };
}

/** Base units to a decimal string without trailing zeros: 1500000000n, 9 -> "1.5". */
export function formatAmount(units: bigint, decimals: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}
