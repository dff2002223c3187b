import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * Two (or more) servers on one Redis. Only used when Redis is configured: without it there is one
 * process and nothing to coordinate.
 */
export const clusterSchema = z
  .object({
    /** This server's name in `/status` and in lease records. Default: the host name. */
    nodeId: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, "_", "." or "-"')
      .optional(),
    /**
     * How long a platform connection's lease lasts without renewal (renewed every quarter of it).
     * After a crash the other server takes over within this time. Default 2000 ms.
     */
    leaseTtlMs: z.number().int().min(500).max(60_000).default(2000),
    /**
     * A node holding a platform connection that has been down this long (it cannot reach the
     * platform) hands it to another node that is up. Checked every 5 s. Default 30 000 ms.
     */
    handOverAfterMs: z.number().int().min(1000).max(3_600_000).default(30_000),
    /** How often a node writes its heartbeat; it counts as down after three missed. Default 1000 ms. */
    heartbeatEveryMs: z.number().int().min(100).max(60_000).default(1000),
    /**
     * This server's HTTP channel as the other servers reach it over the private mesh (Tailscale),
     * e.g. http://100.64.0.2:8080. Each node checks its peers there and shows the result in
     * `/status`; ownership never depends on it (only on Redis), so a cut mesh cannot split-brain.
     */
    advertiseUrl: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  })
  .strict();

export type ClusterConfig = z.infer<typeof clusterSchema>;

export const CLUSTER_DEFAULTS: ClusterConfig = clusterSchema.parse({});

/** The configured node id, or the host name (trimmed to the allowed characters). */
export function resolveNodeId(config: ClusterConfig): string {
  return (
    config.nodeId ??
    (hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 64) ||
      'node')
  );
}
