/** Replaces all but a short hint of a secret, so error messages and `doctor` can show which one is meant. */
export function maskSecret(value: string): string {
  if (value.length === 0) return '(empty)';
  if (value.length <= 8) return '****';
  return `${value.slice(0, 3)}****${value.slice(-2)}`;
}
