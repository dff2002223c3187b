import type { Server } from 'node:http';

/**
 * Listens on 127.0.0.1:`port` (0 picks a free one) and resolves with the bound port. The fakes
 * call it again after `down()` with the port it returned, so clients find them where they were.
 */
export async function listenLocal(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the server has no address');
  return address.port;
}
