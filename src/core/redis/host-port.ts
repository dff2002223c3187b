export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses "host:port" ("10.0.0.5:26379", "sentinel-1:26379", "[::1]:26379"), or returns undefined.
 * The port is required: Sentinel's default (26379) is easy to confuse with Redis's own (6379).
 */
export function parseHostPort(text: string): HostPort | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return undefined;
  return { host: (match[1] ?? match[2]) as string, port };
}
