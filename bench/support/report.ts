/** How the benches print: number formats, Markdown tables and the machine's description. */
import os from 'node:os';

export const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(Math.abs(n) < 10 ? 2 : 1) : 'n/a');
export const pct = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n) ? '-' : `${n.toFixed(0)}%`;

/** Every run's figure, in run order: `1 / 2 / 3`. */
export const eachRun = (values: readonly number[], format: (n: number) => string) =>
  values.map(format).join(' / ');

/** A Markdown table: the first `leftColumns` columns (labels) aligned left, the rest (figures) right. */
export function table(header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < leftColumns ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** The 1, 5 and 15 minute load averages: `0.52 0.61 0.70`. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

/** The bench's first line: `<title>: node, CPUs (model), load average at start`. */
export function machineLine(title: string): string {
  const [cpu] = os.cpus();
  return (
    `${title}: node ${process.version}, ${os.availableParallelism()} CPUs (${cpu?.model.trim() ?? '?'}), ` +
    `load average ${loadAverage()} at start`
  );
}

/** How CPU percentages are read: `percent of one core (2 cores = 200%)`. */
export function coresNote(): string {
  return `percent of one core (${os.availableParallelism()} cores = ${os.availableParallelism() * 100}%)`;
}
