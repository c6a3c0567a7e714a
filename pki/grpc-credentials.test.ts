import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate, newNodeId, type CertificateAuthority, type NodeRole } from './certificate-authority.js';
import type { NodeCredentials } from './credentials-store.js';
import { channelCredentials, channelOptions, peerIdentity, serverCredentials } from './grpc-credentials.js';

// A one-method service defined by hand, so this test depends on nothing but grpc-js: the server
// answers with the identity it read from the client's certificate, as JSON.
const WHO_AM_I_PATH = '/skiff.test.Probe/WhoAmI';
const identityService: grpc.ServiceDefinition = {
  whoAmI: {
    path: WHO_AM_I_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (bytes: Buffer) => bytes,
  },
};
const CALL_DEADLINE_MS = 5_000;

async function credentialsFor(ca: CertificateAuthority, role: NodeRole, nodeId = newNodeId()): Promise<NodeCredentials> {
  const issued = await issueCertificate(ca, { commonName: nodeId, role });
  return { caCertPem: ca.certPem, ...issued };
}

const servers: grpc.Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.forceShutdown();
});

async function startServer(creds: NodeCredentials): Promise<string> {
  const server = new grpc.Server();
  server.addService(identityService, {
    whoAmI: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      callback(null, Buffer.from(JSON.stringify(peerIdentity(call) ?? null)));
    },
  });
  servers.push(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', serverCredentials(creds), (error, boundPort) => (error ? reject(error) : resolve(boundPort)));
  });
  return `127.0.0.1:${port}`;
}

function whoAmI(address: string, credentials: grpc.ChannelCredentials): Promise<unknown> {
  const client = new grpc.Client(address, credentials, channelOptions());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      WHO_AM_I_PATH,
      (value: Buffer) => value,
      (bytes: Buffer) => bytes,
      Buffer.alloc(0),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (error, response) => {
        client.close();
        if (error) reject(error);
        else resolve(JSON.parse(response?.toString() ?? 'null'));
      },
    );
  });
}

describe('mutual TLS', () => {
  it('peerIdentity reads node id, role and cluster id of a verified client', async () => {
    const ca = await createCertificateAuthority();
    const address = await startServer(await credentialsFor(ca, 'manager'));
    const nodeId = newNodeId();
    const identity = await whoAmI(address, channelCredentials(await credentialsFor(ca, 'worker', nodeId)));
    expect(identity).toEqual({ nodeId, role: 'worker', clusterId: ca.clusterId });
  });

  it('peerIdentity reads the certificate once per connection, not once per call', async () => {
    // It finds the HTTP/2 session through grpc-js fields that are not typed publicly: a grpc-js
    // version that moves them fails here instead of silently parsing on every call again.
    const ca = await createCertificateAuthority();
    const reads: number[] = [];
    const server = new grpc.Server();
    server.addService(identityService, {
      whoAmI: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        let count = 0;
        const original = call.getAuthContext.bind(call);
        call.getAuthContext = () => {
          count += 1;
          return original();
        };
        const identity = peerIdentity(call);
        reads.push(count);
        callback(null, Buffer.from(JSON.stringify(identity ?? null)));
      },
    });
    servers.push(server);
    const managerCredentials = serverCredentials(await credentialsFor(ca, 'manager'));
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', managerCredentials, (error, bound) => (error ? reject(error) : resolve(bound)));
    });
    const nodeId = newNodeId();
    const client = new grpc.Client(`127.0.0.1:${port}`, channelCredentials(await credentialsFor(ca, 'worker', nodeId)), channelOptions());
    const call = (): Promise<unknown> =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(WHO_AM_I_PATH, (value: Buffer) => value, (bytes: Buffer) => bytes, Buffer.alloc(0), { deadline: Date.now() + CALL_DEADLINE_MS }, (error, response) =>
          error ? reject(error) : resolve(JSON.parse(response?.toString() ?? 'null')),
        );
      });
    try {
      for (let index = 0; index < 3; index += 1) expect(await call()).toEqual({ nodeId, role: 'worker', clusterId: ca.clusterId });
    } finally {
      client.close();
    }
    expect(reads).toEqual([1, 0, 0]);
  });

  it('a server refuses a client whose certificate comes from another CA', async () => {
    const ca = await createCertificateAuthority();
    const otherCa = await createCertificateAuthority();
    const address = await startServer(await credentialsFor(ca, 'manager'));
    const stranger = await credentialsFor(otherCa, 'admin');
    // The stranger trusts the real CA, so only the server's check of the client can fail.
    const credentials = channelCredentials({ ...stranger, caCertPem: ca.certPem });
    await expect(whoAmI(address, credentials)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('a server refuses a client that presents no certificate', async () => {
    const ca = await createCertificateAuthority();
    const address = await startServer(await credentialsFor(ca, 'manager'));
    const credentials = grpc.credentials.createSsl(Buffer.from(ca.certPem));
    await expect(whoAmI(address, credentials)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('a client refuses a server whose certificate comes from another CA', async () => {
    const ca = await createCertificateAuthority();
    const otherCa = await createCertificateAuthority();
    const impostor = await credentialsFor(otherCa, 'manager');
    const address = await startServer({ ...impostor, caCertPem: ca.certPem });
    await expect(whoAmI(address, channelCredentials(await credentialsFor(ca, 'worker')))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('a client refuses a server certificate without the manager TLS name', async () => {
    const ca = await createCertificateAuthority();
    // A worker certificate has no skiff-manager name (and no server auth): it cannot pose as a manager.
    const address = await startServer(await credentialsFor(ca, 'worker'));
    await expect(whoAmI(address, channelCredentials(await credentialsFor(ca, 'worker')))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });
});

describe('join port credentials', () => {
  it('present the current certificate and the CA chain, without asking for a client certificate, after a renewal too', async () => {
    const { connect } = await import('node:tls');
    const { X509Certificate } = await import('node:crypto');
    const { LiveCredentials } = await import('./live-credentials.js');
    const { issueNodeCredentials } = await import('./ca-store.js');
    const { joinServerCredentials } = await import('./grpc-credentials.js');
    const ca = await createCertificateAuthority();
    const live = new LiveCredentials(await issueNodeCredentials(ca, { nodeId: 'm1', role: 'manager', ipAddresses: ['127.0.0.1'] }));
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', joinServerCredentials(live), (error, bound) => (error === null ? resolve(bound) : reject(error))));
    const presented = async (): Promise<{ serial: string; issuerIsCa: boolean }> => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          return await new Promise((resolve, reject) => {
            const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
              const peer = socket.getPeerCertificate(true);
              socket.destroy();
              resolve({ serial: new X509Certificate(peer.raw).serialNumber, issuerIsCa: new X509Certificate(peer.issuerCertificate.raw).serialNumber === new X509Certificate(ca.certPem).serialNumber });
            });
            socket.once('error', reject);
          });
        } catch (error) {
          if (attempt > 50) throw error; // the provider delivers the identity on the next tick
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    };
    try {
      const before = await presented();
      expect(before).toEqual({ serial: new X509Certificate(live.certPem).serialNumber, issuerIsCa: true });
      live.update(await issueNodeCredentials(ca, { nodeId: 'm1', role: 'manager', ipAddresses: ['127.0.0.1'] }));
      const after = await presented();
      expect(after.serial).toBe(new X509Certificate(live.certPem).serialNumber);
      expect(after.serial).not.toBe(before.serial);
      expect(after.issuerIsCa).toBe(true);
    } finally {
      server.forceShutdown();
    }
  });
});
