/**
 * The embedded DNS resolver of a host (issue #8): UDP and TCP on port 53 of the host bridge's
 * gateway address, in the host's namespace, which every container reaches over its eth0 (an
 * internal container only that). It knows who asks by the source address (the container's
 * address on the host bridge), answers the names of that container's networks (dns-names.ts)
 * with TTL 0, so a changed VIP or task set is seen at once, and forwards every other name to the
 * host's nameservers (from /etc/resolv.conf, loopback ones included: it runs in the host's netns).
 */
import dgram from 'node:dgram';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import type { NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import type { RuntimeLogger } from '../../runtime/log.js';
import { lookupName } from './dns-names.js';
import {
  CLASS_IN,
  DnsFormatError,
  encodeResponse,
  formatErrorResponse,
  MAX_UDP_RESPONSE_BYTES,
  parseQuery,
  RCODE_NOERROR,
  RCODE_SERVFAIL,
  TYPE_A,
  TYPE_ANY,
} from './dns-wire.js';

export const DNS_PORT = 53;
/** Answers of our names are not cached: tasks come and go. */
const TTL_SECONDS = 0;
/** How long one upstream server may take to answer a forwarded query. */
const FORWARD_TIMEOUT_MS = 2_000;
/** Forwarded queries in flight at most; beyond that, SERVFAIL at once. */
const MAX_FORWARDS_IN_FLIGHT = 256;
/** A TCP client that sends nothing for this long is closed. */
const TCP_IDLE_MS = 10_000;
const MAX_TCP_CONNECTIONS = 64;
const RESOLV_CONF = '/etc/resolv.conf';

export interface DnsServerOptions {
  /** The address to listen on (the host bridge's gateway). */
  address: string;
  port?: number;
  /** The networks of the container whose host-bridge address is `source`, in order. */
  scopeOf: (source: string) => NetworkView[];
  logger: RuntimeLogger;
  /** Upstream servers (`ip` or `ip:port`); default: the nameservers of /etc/resolv.conf, read per query. */
  upstreams?: () => Promise<string[]>;
}

export class DnsServer {
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private forwards = 0;

  constructor(private readonly options: DnsServerOptions) {}

  /** Binds UDP and TCP; rejects (e.g. EADDRINUSE) when either cannot listen. */
  async start(): Promise<void> {
    const port = this.options.port ?? DNS_PORT;
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, this.options.address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (error) => this.options.logger.warn('dns socket error', { error: error.message }));
    udp.on('message', (message, remote) => {
      void this.answer(message, remote.address, MAX_UDP_RESPONSE_BYTES).then((response) => {
        if (response !== undefined) udp.send(response, remote.port, remote.address);
      });
    });
    this.udp = udp;
    const tcp = net.createServer((socket) => this.serveTcp(socket));
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, this.options.address, () => {
        tcp.off('error', reject);
        resolve();
      });
    }).catch((error: unknown) => {
      udp.close();
      this.udp = undefined;
      throw error;
    });
    this.tcp = tcp;
  }

  async stop(): Promise<void> {
    this.udp?.close();
    this.udp = undefined;
    const tcp = this.tcp;
    this.tcp = undefined;
    if (tcp !== undefined) await new Promise((resolve) => tcp.close(resolve));
  }

  /** The response to one message from `source`, or undefined when there is nothing to say. */
  async answer(message: Buffer, source: string, maxBytes: number): Promise<Buffer | undefined> {
    let query;
    try {
      query = parseQuery(message);
    } catch (error) {
      if (error instanceof DnsFormatError) return formatErrorResponse(message);
      throw error;
    }
    const found = query.class === CLASS_IN ? lookupName(query.name, this.options.scopeOf(source)) : { kind: 'unknown' as const };
    if (found.kind === 'found') {
      // Ours: A records; other types (AAAA …) get an empty answer so clients move on to A.
      const addresses = query.type === TYPE_A || query.type === TYPE_ANY ? found.addresses : [];
      return encodeResponse(query, RCODE_NOERROR, addresses, TTL_SECONDS, maxBytes);
    }
    const forwarded = await this.forward(message);
    return forwarded ?? encodeResponse(query, RCODE_SERVFAIL, [], 0);
  }

  private async forward(message: Buffer): Promise<Buffer | undefined> {
    if (this.forwards >= MAX_FORWARDS_IN_FLIGHT) return undefined;
    this.forwards += 1;
    try {
      for (const server of await (this.options.upstreams ?? hostNameservers)()) {
        const response = await askUpstream(message, server);
        if (response !== undefined) return response;
      }
      return undefined;
    } finally {
      this.forwards -= 1;
    }
  }

  private serveTcp(socket: net.Socket): void {
    let buffered = Buffer.alloc(0);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const message = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        void this.answer(message, socket.remoteAddress?.replace(/^::ffff:/, '') ?? '', 0xffff).then((response) => {
          if (response === undefined || socket.destroyed) return;
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(response.length);
          socket.write(Buffer.concat([prefix, response]));
        });
      }
    });
  }
}

/** The host's nameservers: every `nameserver` line of /etc/resolv.conf (IPv4 only). */
export async function hostNameservers(): Promise<string[]> {
  const text = await fs.readFile(RESOLV_CONF, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(line)?.[1])
    .filter((server) => server !== undefined);
}

/** Sends `message` to `server` (`ip` for port 53, or `ip:port`) over UDP; the reply, or undefined after FORWARD_TIMEOUT_MS. */
function askUpstream(message: Buffer, server: string): Promise<Buffer | undefined> {
  const [host = '', port = String(DNS_PORT)] = server.split(':');
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const done = (response: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(response);
    };
    const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS);
    socket.on('error', () => done(undefined));
    socket.on('message', (response) => {
      if (response.length >= 2 && response.readUInt16BE(0) === message.readUInt16BE(0)) done(response);
    });
    socket.send(message, Number(port), host);
  });
}
