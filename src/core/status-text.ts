import type { ChannelStatus } from '../channels/channel-hub.js';
import type { ClusterView } from './cluster/cluster.js';

/** A part of `/api/status` that cannot be read now (Redis away) says so; the rest still shows. */
export async function orUnavailable<T>(read: Promise<T>): Promise<T | { unavailable: string }> {
  try {
    return await read;
  } catch (error) {
    return { unavailable: (error as Error).message };
  }
}

export function channelState(health: ChannelStatus): string {
  if (health.state === 'failed') return `failed: ${health.lastError ?? ''}`;
  if (health.role === 'standby') return 'standby (another node holds the connection)';
  if (health.connected) return health.role === 'active' ? 'connected (held by this node)' : 'connected';
  return health.lastError ? `disconnected: ${health.lastError}` : 'disconnected';
}

/** `/status` lines for the nodes and who holds which connection. */
export function clusterLines(view: ClusterView): { nodes: string; leases: string } {
  const since = (ms: number) => new Date(ms).toISOString().slice(11, 19);
  const nodes = view.nodes.map((n) => {
    const state = n.up ? 'up' : n.stopped ? 'stopped' : `down since ${since(n.lastSeenAt)}Z`;
    const mesh = n.mesh ? `, mesh ${n.mesh}` : '';
    return `${n.node}${n.self ? ' (this node)' : ''} ${state}${mesh}`;
  });
  const leases = view.leases.map((l) =>
    l.holder
      ? `${l.name.replace(/^channel:/, '')} on ${l.holder.node} since ${since(l.holder.since)}Z`
      : `${l.name.replace(/^channel:/, '')} unheld`,
  );
  return { nodes: nodes.join('; ') || view.node, leases: leases.join('; ') || 'none' };
}

export function providerState(p: { breaker: string; cooldownUntil?: number; disabled?: string }): string {
  if (p.disabled) return `disabled: ${p.disabled}`;
  if (p.cooldownUntil) return `rate-limited until ${new Date(p.cooldownUntil).toISOString()}`;
  return p.breaker === 'closed' ? 'healthy' : `circuit ${p.breaker}`;
}
