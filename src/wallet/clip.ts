/** Cuts what someone typed to `max` characters for an error message, so a pasted essay is not echoed back. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
