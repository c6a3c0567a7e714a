import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { lookupName } from './dns-names.js';
import { DnsServer } from './dns-server.js';
import { decodeAnswers, encodeQuery, encodeResponse, parseQuery, RCODE_NOERROR, RCODE_NXDOMAIN, TYPE_AAAA } from './dns-wire.js';

function network(id: string, services: Array<{ id: string; name: string; vip: string; mode?: string; aliases?: string[] }>, endpoints: Array<{ service: string; name: string; taskId: string; address: string; ready?: boolean }>): NetworkView {
  return {
    network: { meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec: undefined, allocation: undefined },
    services: services.map((service) => ({ serviceId: service.id, name: service.name, vip: service.vip, endpointMode: service.mode ?? 'vip', ports: [], aliases: service.aliases ?? [] })),
    endpoints: endpoints.map((endpoint) => ({ taskId: endpoint.taskId, taskName: endpoint.name, serviceId: endpoint.service, address: endpoint.address, nodeId: 'n', nodeAddr: '192.168.0.1', ready: endpoint.ready ?? true })),
  };
}

const front = network('front', [{ id: 's1', name: 'web', vip: '10.0.0.2/24' }, { id: 's2', name: 'db', vip: '', mode: 'dnsrr' }], [
  { service: 's1', name: 'web.1', taskId: 'abc', address: '10.0.0.3/24' },
  { service: 's1', name: 'web.2', taskId: 'def', address: '10.0.0.4/24', ready: false },
  { service: 's2', name: 'db.1', taskId: 'ghi', address: '10.0.0.5/24' },
]);
const back = network('back', [{ id: 's3', name: 'web', vip: '10.1.0.2/24' }], []);

describe('dns names', () => {
  it('dns names resolve services to the VIP, dnsrr services and tasks.SERVICE to ready task addresses, task names to their address', () => {
    expect(lookupName('web', [front])).toEqual({ kind: 'found', addresses: ['10.0.0.2'] });
    expect(lookupName('tasks.web', [front])).toEqual({ kind: 'found', addresses: ['10.0.0.3'] });
    expect(lookupName('db', [front])).toEqual({ kind: 'found', addresses: ['10.0.0.5'] });
    expect(lookupName('web.2', [front])).toEqual({ kind: 'found', addresses: ['10.0.0.4'] });
    expect(lookupName('web.1.abc', [front])).toEqual({ kind: 'found', addresses: ['10.0.0.3'] });
    expect(lookupName('example.com', [front])).toEqual({ kind: 'unknown' });
  });

  // shop_web answers to web (a stack's short name); shop_api and shop_db share the alias backend;
  // api (its own name) is also another service's alias.
  const stack = network('stack', [
    { id: 's1', name: 'shop_web', vip: '10.2.0.2/24', aliases: ['web', 'www.shop.example'] },
    { id: 's2', name: 'shop_api', vip: '10.2.0.3/24', aliases: ['backend'] },
    { id: 's3', name: 'shop_db', vip: '', mode: 'dnsrr', aliases: ['Backend', 'API'] },
    { id: 's4', name: 'api', vip: '10.2.0.4/24' },
  ], [
    { service: 's1', name: 'shop_web.1', taskId: 'a1', address: '10.2.0.10/24' },
    { service: 's1', name: 'shop_web.2', taskId: 'a2', address: '10.2.0.11/24', ready: false },
    { service: 's2', name: 'shop_api.1', taskId: 'b1', address: '10.2.0.12/24' },
    { service: 's3', name: 'shop_db.1', taskId: 'c1', address: '10.2.0.13/24' },
    { service: 's3', name: 'shop_db.2', taskId: 'c2', address: '10.2.0.14/24' },
    { service: 's4', name: 'api.1', taskId: 'd1', address: '10.2.0.15/24' },
  ]);

  it('dns names resolve a service alias like its name, tasks.ALIAS to its ready tasks, case-insensitively', () => {
    expect(lookupName('web', [stack])).toEqual({ kind: 'found', addresses: ['10.2.0.2'] });
    expect(lookupName('www.shop.example', [stack])).toEqual({ kind: 'found', addresses: ['10.2.0.2'] });
    expect(lookupName('tasks.web', [stack])).toEqual({ kind: 'found', addresses: ['10.2.0.10'] });
    // The resolver lower-cases the question; the alias was given as Backend and API.
    expect(lookupName('tasks.backend', [stack])).toEqual({ kind: 'found', addresses: ['10.2.0.12', '10.2.0.13', '10.2.0.14'] });
  });

  it('dns names answer an alias that several services share with all their addresses, dnsrr ones by task', () => {
    expect(lookupName('backend', [stack])).toEqual({ kind: 'found', addresses: ['10.2.0.3', '10.2.0.13', '10.2.0.14'] });
  });

  it('dns names keep a service own name before another service alias of that name', () => {
    expect(lookupName('api', [stack])).toEqual({ kind: 'found', addresses: ['10.2.0.4'] });
    expect(lookupName('tasks.api', [stack])).toEqual({ kind: 'found', addresses: ['10.2.0.15'] });
  });

  it('dns names scope aliases to the network they are given on', () => {
    expect(lookupName('web', [front])).toEqual({ kind: 'found', addresses: ['10.0.0.2'] });
    expect(lookupName('backend', [front, back])).toEqual({ kind: 'unknown' });
    expect(lookupName('backend', [front, stack])).toEqual({ kind: 'found', addresses: ['10.2.0.3', '10.2.0.13', '10.2.0.14'] });
  });

  it('dns names are scoped to the asking container networks, first network first', () => {
    expect(lookupName('web', [back, front])).toEqual({ kind: 'found', addresses: ['10.1.0.2'] });
    expect(lookupName('db', [back])).toEqual({ kind: 'unknown' });
    expect(lookupName('web', [])).toEqual({ kind: 'unknown' });
  });
});

describe('dns wire', () => {
  it('dns wire round-trips a query and an A response, truncating what does not fit', () => {
    const query = parseQuery(encodeQuery(0x1234, 'Tasks.Web.'));
    expect(query).toMatchObject({ id: 0x1234, name: 'tasks.web', type: 1, class: 1, recursionDesired: true });
    const response = encodeResponse(query, RCODE_NOERROR, ['10.0.0.3', '10.0.0.4'], 0);
    expect(response.readUInt16BE(0)).toBe(0x1234);
    expect(decodeAnswers(response)).toEqual({ rcode: RCODE_NOERROR, truncated: false, addresses: ['10.0.0.3', '10.0.0.4'] });
    const many = Array.from({ length: 40 }, (_, index) => `10.0.1.${index}`);
    const cut = decodeAnswers(encodeResponse(query, RCODE_NOERROR, many, 0, 512));
    expect(cut.truncated).toBe(true);
    expect(cut.addresses.length).toBeLessThan(40);
    expect(decodeAnswers(encodeResponse(query, RCODE_NXDOMAIN, [], 0)).rcode).toBe(RCODE_NXDOMAIN);
  });

  it('dns wire refuses malformed messages', () => {
    expect(() => parseQuery(Buffer.from([1, 2, 3]))).toThrow(/shorter than a header/);
    const looping = Buffer.concat([encodeQuery(1, 'a').subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    expect(() => parseQuery(looping)).toThrow(/pointer/);
  });
});

describe('dns server', () => {
  let server: DnsServer | undefined;
  afterEach(async () => {
    await server?.stop();
  });

  async function ask(port: number, name: string, type?: number): Promise<ReturnType<typeof decodeAnswers>> {
    const socket = dgram.createSocket('udp4');
    try {
      const reply = await new Promise<Buffer>((resolve, reject) => {
        socket.once('message', resolve);
        socket.once('error', reject);
        socket.send(encodeQuery(7, name, type), port, '127.0.0.1');
      });
      return decodeAnswers(reply);
    } finally {
      socket.close();
    }
  }

  it('dns server answers by the asking address scope and forwards other names upstream', async () => {
    // A fake upstream (named so): answers every forwarded query with 192.0.2.1.
    const upstream = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => upstream.bind(0, '127.0.0.1', resolve));
    upstream.on('message', (message, remote) => upstream.send(encodeResponse(parseQuery(message), RCODE_NOERROR, ['192.0.2.1'], 60), remote.port, remote.address));
    const upstreamPort = upstream.address().port;
    let upstreams = [`127.0.0.1:${upstreamPort}`];
    server = new DnsServer({ address: '127.0.0.1', port: 0, scopeOf: (source) => (source === '127.0.0.1' ? [front] : []), logger: { info: () => undefined, warn: () => undefined }, upstreams: async () => upstreams });
    await server.start();
    const port = (server as unknown as { udp: dgram.Socket }).udp.address().port;
    expect(await ask(port, 'tasks.web')).toEqual({ rcode: RCODE_NOERROR, truncated: false, addresses: ['10.0.0.3'] });
    expect(await ask(port, 'web', TYPE_AAAA)).toEqual({ rcode: RCODE_NOERROR, truncated: false, addresses: [] });
    expect(await ask(port, 'example.com')).toEqual({ rcode: RCODE_NOERROR, truncated: false, addresses: ['192.0.2.1'] });
    // Another container (another source address) sees none of front's names: forwarded.
    expect(decodeAnswers((await server.answer(encodeQuery(8, 'tasks.web'), '10.9.9.9', 512))!).addresses).toEqual(['192.0.2.1']);
    // TCP: the same answers, length-prefixed.
    const tcpPort = (server as unknown as { tcp: net.Server }).tcp.address() as net.AddressInfo;
    const overTcp = await new Promise<Buffer>((resolve, reject) => {
      const socket = net.connect(tcpPort.port, '127.0.0.1', () => {
        const query = encodeQuery(11, 'web.1.abc');
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(query.length);
        socket.write(Buffer.concat([prefix, query]));
      });
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
          socket.end();
          resolve(received.subarray(2));
        }
      });
      socket.on('error', reject);
    });
    expect(decodeAnswers(overTcp).addresses).toEqual(['10.0.0.3']);
    upstream.close();
    // No upstream: SERVFAIL rather than silence.
    upstreams = [];
    expect((await ask(port, 'example.com')).rcode).toBe(2);
  });
});
