// `skiff init`: make this machine the first manager of a new cluster. It creates the cluster CA,
// this manager's node credentials and an admin credential for the CLI, selects a context for it,
// and prints the skiffd command to run. It starts nothing itself.
import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  CA_CERT_FILE,
  CA_KEY_FILE,
  NODE_CERT_FILE,
  NODE_KEY_FILE,
  caDigest,
  createCertificateAuthority,
  issueNodeCredentials,
  newJoinToken,
  writeClusterBootstrap,
  newNodeId,
  writeCertificateAuthority,
  writeCredentials,
  type CertificateAuthority,
} from '../../pki/index.js';
import { checkContextName, contextCertsDir, saveContext } from '../context.js';
import { parseCidr } from '../../manager/allocator/ipam.js';
import { parseCount } from './service-flags.js';

/** Where a manager keeps its state unless told otherwise. */
export const DEFAULT_DATA_DIR = '/var/lib/skiff';
/** The gRPC port of every skiffd (DESIGN.md §1). */
export const DEFAULT_GRPC_PORT = 4242;
export const DEFAULT_CONTEXT_NAME = 'default';
/** Sub-directories of a data dir: the CA (managers only) and the node's own credentials. */
export const CA_DIR = 'ca';
export const CERTS_DIR = 'certs';

/** What `initCluster` needs. `ca` lets the lab hand in a CA it made (or read) itself. */
export interface InitClusterOptions {
  dataDir: string;
  /** `ip:port` other nodes and the CLI reach this manager at. */
  advertiseAddr: string;
  contextName: string;
  hostname?: string;
  /** Every manager address for the CLI context; defaults to `[advertiseAddr]`. */
  contextManagers?: string[];
  /** Use this CA instead of creating one. It is still written to `<dataDir>/ca`. */
  ca?: CertificateAuthority;
  /** Use this node id instead of a random one. */
  nodeId?: string;
  /** Lifetime of node certificates in ms (0: the default, 90 days). */
  certExpiryMs?: number;
  /** Network subnets come from this CIDR (default 10.0.0.0/8) ... */
  defaultAddressPool?: string;
  /** ... cut into subnets of this prefix length (default 24). */
  defaultSubnetSize?: number;
}

/** What `initCluster` made. */
export interface InitClusterResult {
  ca: CertificateAuthority;
  nodeId: string;
  caDir: string;
  certsDir: string;
  adminCertsDir: string;
  joinTokens: { worker: string; manager: string };
  /** argv of the skiffd that serves this manager (without the binary's path resolution). */
  daemonArgv: string[];
}

/**
 * Creates a cluster's first manager: the CA in `<dataDir>/ca` (refusing, with the file's name, if
 * one exists), node credentials (role manager, IP SAN of the advertise address) in
 * `<dataDir>/certs`, an admin credential in `<skiffHome>/certs/<context>`, and the CLI context,
 * which becomes current. Order matters: the CA is written first, so a refused init changes nothing.
 */
export async function initCluster(options: InitClusterOptions): Promise<InitClusterResult> {
  checkContextName(options.contextName);
  const advertiseIp = splitAddress('advertise-addr', options.advertiseAddr).ip;
  const addressPool = addressPoolOf(options);
  const ca = options.ca ?? (await createCertificateAuthority());
  const caDir = join(options.dataDir, CA_DIR);
  await writeCertificateAuthority(caDir, ca);

  // The tokens exist before any manager runs, so init can print the join commands; the first
  // manager writes them into the store, and deletes this file with the CA key.
  const digest = caDigest(ca.certPem);
  const joinTokens = { worker: newJoinToken(digest), manager: newJoinToken(digest) };
  await writeClusterBootstrap(caDir, { workerToken: joinTokens.worker, managerToken: joinTokens.manager, certExpiryMs: options.certExpiryMs ?? 0,
    ...addressPool,
  });

  const nodeId = options.nodeId ?? newNodeId();
  const certsDir = join(options.dataDir, CERTS_DIR);
  const dnsNames = options.hostname === undefined ? [] : [options.hostname];
  await writeCredentials(certsDir, await issueNodeCredentials(ca, { nodeId, role: 'manager', ipAddresses: [advertiseIp], dnsNames, ...(options.certExpiryMs ? { lifetimeMs: options.certExpiryMs } : {}) }));

  const adminCertsDir = contextCertsDir(options.contextName);
  await writeCredentials(adminCertsDir, await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'admin' }));
  await saveContext(
    options.contextName,
    {
      managers: options.contextManagers ?? [options.advertiseAddr],
      caCertPath: join(adminCertsDir, CA_CERT_FILE),
      certPath: join(adminCertsDir, NODE_CERT_FILE),
      keyPath: join(adminCertsDir, NODE_KEY_FILE),
    },
    { makeCurrent: true },
  );
  const daemonArgv = ['skiffd', '--manager', '--data-dir', options.dataDir, '--listen-addr', `0.0.0.0:${splitAddress('advertise-addr', options.advertiseAddr).port}`, '--advertise-addr', options.advertiseAddr];
  if (options.hostname !== undefined) daemonArgv.push('--hostname', options.hostname);
  return { ca, nodeId, caDir, certsDir, adminCertsDir, joinTokens, daemonArgv };
}

/** Splits and checks an IPv4 `ip:port`; `field` names the flag in the error. */
export function splitAddress(field: string, address: string): { ip: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(address);
  const ip = match?.[1];
  const port = Number(match?.[2]);
  if (ip === undefined || !isIPv4(ip) || !(port > 0 && port < 65536)) {
    throw new Error(`cannot use ${field} "${address}": expected IPv4 ip:port, e.g. 10.0.0.5:${DEFAULT_GRPC_PORT}`);
  }
  return { ip, port };
}

/** The first non-loopback IPv4 address of this machine, or undefined. */
export function firstNonLoopbackIpv4(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return undefined;
}

/** The address pool of `skiff init`, checked: a bad pool is refused before anything is written. */
function addressPoolOf(options: { defaultAddressPool?: string; defaultSubnetSize?: number }): { defaultAddressPool?: string; defaultSubnetSize?: number } {
  let pool: ReturnType<typeof parseCidr> | undefined;
  try {
    pool = options.defaultAddressPool === undefined ? undefined : parseCidr(options.defaultAddressPool);
  } catch (error) {
    throw new Error(`invalid --default-addr-pool: ${error instanceof Error ? error.message : String(error)}`);
  }
  const size = options.defaultSubnetSize;
  if (size !== undefined && (size < (pool?.prefix ?? 8) || size > 29)) {
    throw new Error(`invalid --default-addr-pool-mask-length ${size}: must be between the pool's prefix length (${pool?.prefix ?? 8}) and 29`);
  }
  return { ...(options.defaultAddressPool === undefined ? {} : { defaultAddressPool: options.defaultAddressPool }), ...(size === undefined ? {} : { defaultSubnetSize: size }) };
}

/** Registers `skiff init` on `program`. */
export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('create a new cluster: its CA, this manager\'s credentials and an admin context for the CLI')
    .option('--data-dir <dir>', 'manager data directory', DEFAULT_DATA_DIR)
    .option('--advertise-addr <ip:port>', `address other nodes reach this manager at (default: first non-loopback IPv4:${DEFAULT_GRPC_PORT})`)
    .option('--context <name>', 'CLI context to create and select', DEFAULT_CONTEXT_NAME)
    .option('--hostname <name>', 'hostname this node reports')
    .option('--cert-expiry <duration>', 'lifetime of node certificates, e.g. 90d, 12h, 2m', '90d')
    .option('--default-addr-pool <cidr>', 'address pool that network subnets are cut from', '10.0.0.0/8')
    .option('--default-addr-pool-mask-length <n>', 'prefix length of each network subnet', '24')
    .action(async (flags: { dataDir: string; advertiseAddr?: string; context: string; hostname?: string; certExpiry: string; defaultAddrPool: string; defaultAddrPoolMaskLength: string }, command: Command) => {
      try {
        let advertiseAddr = flags.advertiseAddr;
        if (advertiseAddr === undefined) {
          const ip = firstNonLoopbackIpv4();
          if (ip === undefined) throw new Error('cannot pick advertise-addr: this machine has no non-loopback IPv4 address; pass --advertise-addr');
          advertiseAddr = `${ip}:${DEFAULT_GRPC_PORT}`;
        }
        const result = await initCluster({
          dataDir: flags.dataDir,
          advertiseAddr,
          contextName: flags.context,
          certExpiryMs: parseDuration('cert-expiry', flags.certExpiry),
          defaultAddressPool: flags.defaultAddrPool,
          defaultSubnetSize: parseCount('--default-addr-pool-mask-length', flags.defaultAddrPoolMaskLength),
          ...(flags.hostname === undefined ? {} : { hostname: flags.hostname }),
        });
        process.stdout.write(
          [
            `Cluster ${result.ca.clusterId} created; this manager is node ${result.nodeId}.`,
            `  CA:               ${join(result.caDir, CA_CERT_FILE)} (key ${join(result.caDir, CA_KEY_FILE)}, keep it secret)`,
            `  node credentials: ${result.certsDir}`,
            `  CLI context:      ${flags.context} (current), admin credentials in ${result.adminCertsDir}`,
            'Start the manager with:',
            `  ${result.daemonArgv.map(shellQuote).join(' ')}`,
            '',
            'Then, to add a worker, run on the new host:',
            `  skiff join --token ${result.joinTokens.worker} ${advertiseAddr}`,
            'To add a manager:',
            `  skiff join --token ${result.joinTokens.manager} ${advertiseAddr}`,
            '',
          ].join('\n'),
        );
      } catch (error) {
        command.error(`skiff init: ${error instanceof Error ? error.message : String(error)}`, { exitCode: 1 });
      }
    });
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Parses `90d`, `12h`, `30m`, `45s` or `500ms` into milliseconds; `field` names the flag in errors. */
export function parseDuration(field: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (match === null) throw new Error(`cannot use ${field} "${text}": expected a number and a unit (ms, s, m, h, d), e.g. 90d`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(match[1]) * unit);
}
