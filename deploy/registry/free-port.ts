/**
 * Free TCP ports for tests and the lab: asks the kernel for an ephemeral port on `host` and releases
 * it. Another process may take it before the caller binds; callers that can retry should.
 */
import { createServer } from 'node:net';

/** Resolves with a TCP port that was free on `host` (default 127.0.0.1) a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error(`cannot find free port on ${host}: no address`));
        else resolve(address.port);
      });
    });
  });
}
