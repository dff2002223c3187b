import type { ChannelStatus } from '../../channels/channel-hub.js';
import type { JobDefinition } from '../../jobs/job-scheduler.js';
import type { ClusterView } from '../cluster/cluster.js';
import type { Incidents } from './incidents.js';

/** What the watch reads each round; each part is optional (no gateway, no cluster...). */
export interface WatchedState {
  providers?: () => { id: string; breaker: string }[];
  channels?: () => Record<string, ChannelStatus>;
  cluster?: () => ClusterView;
  redis?: () => { reachable: boolean; unreachableSince?: number };
}

export interface WatchThresholds {
  /** A provider's breaker open this long is an incident. */
  providerOpenAfterMs: number;
  /** A platform connection down (or held by no node) this long is an incident. */
  channelDownAfterMs: number;
  /** Redis unreachable this long is an incident. */
  redisDownAfterMs: number;
  everyMs: number;
}

/**
 * The `incident-watch` job, on every node: looks at the providers' breakers, the platform
 * connections, the other nodes and Redis, and raises or clears the matching incident. Each node
 * watches what it can see; the incidents' cluster-wide claim keeps two nodes from both reporting.
 */
export function incidentWatchJob(
  incidents: Incidents,
  state: WatchedState,
  thresholds: WatchThresholds,
  now: () => number = Date.now,
): JobDefinition {
  /** When each condition was first seen in a row of rounds. */
  const firstSeen = new Map<string, number>();
  const heldFor = (key: string, holds: boolean): number => {
    if (!holds) {
      firstSeen.delete(key);
      return -1;
    }
    const since = firstSeen.get(key) ?? now();
    firstSeen.set(key, since);
    return now() - since;
  };
  const check = async (key: string, holdsForMs: number, afterMs: number, opened: string, closed: string) => {
    if (holdsForMs >= afterMs) await incidents.raise(key, opened);
    else if (holdsForMs < 0) await incidents.clear(key, closed);
  };

  return {
    name: 'incident-watch',
    everyMs: thresholds.everyMs,
    run: async () => {
      for (const provider of state.providers?.() ?? []) {
        const key = `provider:${provider.id}`;
        await check(
          key,
          heldFor(key, provider.breaker === 'open'),
          thresholds.providerOpenAfterMs,
          `provider "${provider.id}" has been failing: its circuit breaker is open, and requests go to the other providers`,
          `provider "${provider.id}" answers again: its circuit breaker closed`,
        );
      }

      const view = state.cluster?.();
      const unheld = new Set(
        (view?.leases ?? []).filter((l) => !l.holder).map((l) => l.name.replace(/^channel:/, '')),
      );
      for (const [name, status] of Object.entries(state.channels?.() ?? {})) {
        // A standby node's connection is down by design; the holder (or nobody) decides.
        const down =
          unheld.has(name) || (status.role !== 'standby' && (!status.connected || status.state === 'failed'));
        const key = `channel:${name}`;
        await check(
          key,
          heldFor(key, down),
          thresholds.channelDownAfterMs,
          `${name} is down: ${unheld.has(name) ? 'no node holds its connection' : (status.lastError ?? 'not connected')}`,
          `${name} is connected again`,
        );
      }

      for (const peer of view?.nodes ?? []) {
        if (peer.self) continue;
        const key = `node:${peer.node}`;
        const dead = !peer.up && !peer.stopped;
        if (dead)
          await incidents.raise(key, `node ${peer.node} stopped sending heartbeats (it may have died)`);
        else
          await incidents.clear(key, `node ${peer.node} is ${peer.stopped ? 'stopped cleanly' : 'up again'}`);
      }

      const redis = state.redis?.();
      if (redis) {
        const downForMs = redis.reachable ? -1 : now() - (redis.unreachableSince ?? now());
        await check(
          'redis',
          downForMs,
          thresholds.redisDownAfterMs,
          'Redis is unreachable (down, or failing over): answering from the local write-ahead log',
          'Redis is reachable again; the local write-ahead log replays into it',
        );
      }
    },
  };
}
