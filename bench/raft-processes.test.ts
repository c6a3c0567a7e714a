import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freeLoopbackPortPairs } from './raft-processes.js';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('freeLoopbackPortPairs', () => {
  it('gives ports whose next port is free too, with no two pairs overlapping', async () => {
    const ports = await freeLoopbackPortPairs(8);
    expect(ports).toHaveLength(8);
    const all = ports.flatMap((port) => [port, port + 1]);
    expect(new Set(all).size).toBe(16);
    // Every port of every pair can be bound at once, as eight managers' gRPC and join ports.
    const servers = await Promise.all(all.map((port) => listen(port)));
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });
});
