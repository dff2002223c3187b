/**
 * Where the chaos tests' nodes live. With root and `ip` (the CI machines), each node gets its own
 * network namespace, joined to the test's fakes and Redis by a bridge: the nodes reach each other
 * only over that bridge, and `cut()` blackholes each node's route to the other while both still
 * reach the bridge's address. Elsewhere every node shares the loopback interface (the fallback),
 * and the harness cuts the mesh with TCP proxies instead.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface NodeNetwork {
  /** Where the fakes and Redis listen, as the nodes reach them. */
  readonly hostAddress: string;
  /** The node's own address (its HTTP channel listens there). */
  address(node: string): string;
  /** The namespace to run the node in; undefined on the loopback fallback. */
  namespace(node: string): string | undefined;
  /** Breaks (true) or restores (false) the link between every pair of nodes. */
  cut(isCut: boolean): void;
  destroy(): void;
}

export const LOOPBACK: NodeNetwork = {
  hostAddress: '127.0.0.1',
  address: () => '127.0.0.1',
  namespace: () => undefined,
  cut: () => {},
  destroy: () => {},
};

const live = new Set<NodeNetwork>();
process.once('exit', () => {
  for (const network of live) network.destroy();
});

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * One namespace per node on a fresh bridge, or the loopback fallback when this machine does not
 * allow it (not root, no `ip`, no namespaces) or `AGENT_TEST_NETNS=0`.
 */
export function createNodeNetwork(nodes: readonly string[]): NodeNetwork {
  if (process.env.AGENT_TEST_NETNS === '0' || process.getuid?.() !== 0) return LOOPBACK;
  const id = randomBytes(3).toString('hex');
  const subnet = `10.${200 + (Number.parseInt(id.slice(0, 2), 16) % 50)}.${Number.parseInt(id.slice(2, 4), 16)}`;
  const bridge = `agbr${id}`;
  const hostAddress = `${subnet}.1`;
  const addresses = new Map(nodes.map((node, i) => [node, `${subnet}.${i + 2}`]));
  const namespaces = new Map(nodes.map((node) => [node, `agent-${id}-${node}`]));
  const created: (() => void)[] = [];
  const destroy = () => {
    for (const undo of created.splice(0).reverse()) {
      try {
        undo();
      } catch {
        // Already gone.
      }
    }
    live.delete(network);
  };
  const network: NodeNetwork = {
    hostAddress,
    address: (node) => addresses.get(node) ?? hostAddress,
    namespace: (node) => namespaces.get(node),
    cut(isCut) {
      for (const [node, ns] of namespaces) {
        for (const [peer, address] of addresses) {
          if (peer === node) continue;
          try {
            ip('netns', 'exec', ns, 'ip', 'route', isCut ? 'add' : 'del', 'blackhole', `${address}/32`);
          } catch (error) {
            if (isCut) throw error;
          }
        }
      }
    },
    destroy,
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    created.push(() => ip('link', 'del', bridge));
    ip('addr', 'add', `${hostAddress}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    for (const [i, node] of nodes.entries()) {
      const ns = namespaces.get(node) as string;
      const veth = `ag${id}${i}`;
      ip('netns', 'add', ns);
      created.push(() => ip('netns', 'del', ns));
      ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`);
      created.push(() => ip('link', 'del', veth));
      ip('link', 'set', veth, 'master', bridge);
      ip('link', 'set', veth, 'up');
      ip('link', 'set', `${veth}p`, 'netns', ns);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${addresses.get(node)}/24`, 'dev', `${veth}p`);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', `${veth}p`, 'up');
    }
  } catch (error) {
    destroy();
    console.warn(`network namespaces unavailable, nodes share loopback: ${(error as Error).message}`);
    return LOOPBACK;
  }
  live.add(network);
  return network;
}
