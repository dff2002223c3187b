import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ChannelStatus } from '../../../../src/channels/channel-hub.js';
import { incidentWatchJob, type WatchedState } from '../../../../src/core/alerts/incident-watch.js';
import { Incidents } from '../../../../src/core/alerts/incidents.js';
import type { ClusterView, NodeView } from '../../../../src/core/cluster/cluster.js';

const logger = pino({ level: 'silent' });
const THRESHOLDS = {
  providerOpenAfterMs: 1000,
  channelDownAfterMs: 2000,
  redisDownAfterMs: 500,
  everyMs: 100,
};

function world() {
  let now = 1_000_000;
  const sent: { id: string; text: string }[] = [];
  const claims = new Set<string>();
  const incidents = (node: string) =>
    new Incidents({
      deliver: async (id, text) => {
        sent.push({ id, text });
      },
      // As Redis SET NX would answer for the whole cluster.
      claim: async (key) => {
        if (claims.has(key)) return false;
        claims.add(key);
        return true;
      },
      release: async (key) => {
        claims.delete(key);
      },
      source: `agent on ${node}`,
      logger,
      now: () => now,
    });
  return { sent, incidents, tick: (ms: number) => (now += ms), now: () => now };
}

const peer = (overrides: Partial<NodeView>): NodeView => ({
  node: 'b',
  instance: 'i',
  pid: 1,
  version: 'v',
  startedAt: 0,
  lastSeenAt: 0,
  self: false,
  up: true,
  ...overrides,
});

const channel = (overrides: Partial<ChannelStatus>): ChannelStatus => ({
  connected: true,
  consecutiveSendFailures: 0,
  state: 'running',
  ...overrides,
});

describe('the incident watch', () => {
  it('reports a dead node once, not a cleanly stopped one, and its return once', async () => {
    const w = world();
    let nodes = [peer({ up: false })];
    const state: WatchedState = { cluster: (): ClusterView => ({ node: 'a', nodes, leases: [] }) };
    const job = incidentWatchJob(w.incidents('a'), state, THRESHOLDS, w.now);
    for (let i = 0; i < 5; i++) await job.run(new AbortController().signal);
    expect(w.sent.map((m) => m.text)).toEqual([
      'agent on a: node b stopped sending heartbeats (it may have died)',
    ]);
    nodes = [peer({ up: true })];
    await job.run(new AbortController().signal);
    await job.run(new AbortController().signal);
    expect(w.sent.at(-1)?.text).toMatch(/^agent on a: node b is up again \(after about 1 min\)$/);
    expect(w.sent).toHaveLength(2);

    nodes = [peer({ up: false, stopped: true })];
    await job.run(new AbortController().signal);
    expect(w.sent).toHaveLength(2);
  });

  it('reports a platform down on its holder, or held by no node, only after the threshold', async () => {
    const w = world();
    let status: Record<string, ChannelStatus> = {
      telegram: channel({ connected: false, role: 'active', lastError: 'ECONNRESET' }),
      // Down by design on a standby node.
      slack: channel({ connected: false, role: 'standby' }),
    };
    let leases: ClusterView['leases'] = [{ name: 'channel:discord' }];
    status.discord = channel({ connected: false, role: 'standby' });
    const job = incidentWatchJob(
      w.incidents('a'),
      { channels: () => status, cluster: () => ({ node: 'a', nodes: [], leases }) },
      THRESHOLDS,
      w.now,
    );
    await job.run(new AbortController().signal);
    w.tick(1500);
    await job.run(new AbortController().signal);
    expect(w.sent).toEqual([]);
    w.tick(600);
    await job.run(new AbortController().signal);
    expect(w.sent.map((m) => m.text).sort()).toEqual([
      'agent on a: discord is down: no node holds its connection',
      'agent on a: telegram is down: ECONNRESET',
    ]);
    status = { ...status, telegram: channel({ connected: true, role: 'active' }) };
    leases = [{ name: 'channel:discord', holder: { node: 'b', instance: 'i', fence: 2, since: 0 } }];
    await job.run(new AbortController().signal);
    expect(
      w.sent
        .slice(2)
        .map((m) => m.text.replace(/ \(after.*/, ''))
        .sort(),
    ).toEqual(['agent on a: discord is connected again', 'agent on a: telegram is connected again']);
  });

  it('reports an incident two nodes see once across the cluster, and its end once', async () => {
    const w = world();
    let breaker = 'open';
    const state: WatchedState = { providers: () => [{ id: 'primary', breaker }] };
    const onA = incidentWatchJob(w.incidents('a'), state, THRESHOLDS, w.now);
    const onB = incidentWatchJob(w.incidents('b'), state, THRESHOLDS, w.now);
    const both = async () => {
      await onA.run(new AbortController().signal);
      await onB.run(new AbortController().signal);
    };
    await both();
    w.tick(1200);
    await both();
    await both();
    expect(w.sent.map((m) => m.text)).toEqual([
      'agent on a: provider "primary" has been failing: its circuit breaker is open, and requests go to the other providers',
    ]);
    breaker = 'closed';
    await both();
    expect(w.sent).toHaveLength(2);
    expect(w.sent[1]?.text).toMatch(/^agent on a: provider "primary" answers again/);
  });
});
