import type { Server } from 'node:http';

/**
 * Listens on `host`:`port` (127.0.0.1 and a free port by default) and resolves with the bound
 * port. The fakes call it again after `down()` with the port it returned, so clients find them
 * where they were. A chaos test with nodes in network namespaces passes its bridge address.
 */
export async function listenLocal(server: Server, port = 0, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the server has no address');
  return address.port;
}
