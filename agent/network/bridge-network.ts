/**
 * Host-side container networking: a Linux bridge with the subnet's first address, and per
 * container a veth pair whose peer is created directly inside the container's network namespace
 * as eth0 with an address from FileIpam and a default route via the bridge.
 *
 * Why plain `ip` and not the CNI bridge plugin: with isGateway the plugin switches on
 * net.ipv4.ip_forward in the calling namespace (a machine-wide change when run outside a lab
 * host), and it adds nothing we need here; two `ip -batch` calls do the whole attach. No NAT, no
 * sysctl writes; existing interfaces other than the named bridge are never touched.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { runCommand, firstLine } from '../runtime/command.js';
import { FileIpam } from './ipam.js';
import { formatAddress, gatewayAddress, parseSubnet, type Ipv4Subnet } from './subnet.js';

export const IP_PATH = '/usr/sbin/ip';
export const NSENTER_PATH = '/usr/bin/nsenter';
export const NFT_PATH = '/usr/sbin/nft';
export const UNSHARE_PATH = '/usr/bin/unshare';
/** Deadline for one `ip` invocation. */
const IP_TIMEOUT_MS = 15_000;
/** Interface name inside the container. */
export const CONTAINER_INTERFACE = 'eth0';
const INTERFACE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;

export interface BridgeNetworkOptions {
  /** Network state (address claims) goes under `<stateDir>/network`. */
  stateDir: string;
  bridgeName: string;
  /** e.g. `198.18.129.0/24`; the bridge takes `.1`. */
  bridgeSubnet: string;
}

/** Thrown for every networking failure; the runtime maps it to `network_failed`. */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
}

export class BridgeNetwork {
  readonly subnet: Ipv4Subnet;
  readonly gateway: string;
  private readonly ipam: FileIpam;
  private bridgeReady: Promise<void> | undefined;

  constructor(readonly options: BridgeNetworkOptions) {
    if (!INTERFACE_NAME_PATTERN.test(options.bridgeName)) {
      throw new NetworkError(`cannot use bridge "${options.bridgeName}": not a valid interface name`);
    }
    this.subnet = parseSubnet(options.bridgeSubnet);
    this.gateway = formatAddress(gatewayAddress(this.subnet));
    this.ipam = new FileIpam(path.join(options.stateDir, 'network', 'ipam', options.bridgeName), this.subnet);
  }

  /** Creates the bridge if missing, gives it the gateway address and sets it up. Idempotent. */
  ensureBridge(): Promise<void> {
    this.bridgeReady ??= this.createBridge().catch((error: unknown) => {
      this.bridgeReady = undefined; // let a later call retry
      throw error;
    });
    return this.bridgeReady;
  }

  /** Claims an address for the container (before it exists, so /etc/hosts can name it). */
  async reserve(containerId: string): Promise<string> {
    try {
      return await this.ipam.allocate(containerId);
    } catch (error) {
      throw new NetworkError(error instanceof Error ? error.message : String(error));
    }
  }

  /**
   * Plugs the container whose init is `pid` into the bridge with its reserved `address`. An
   * `internal` container (only on internal overlay networks) gets no way out: a /32 address, a
   * route to the gateway only, and an nftables table in its own netns (which it cannot change
   * without CAP_NET_ADMIN) that lets nothing through eth0 but DNS to the embedded resolver. An
   * `isolated` container (one on overlay networks) gets an isolated bridge port: it cannot talk
   * to another isolated container over the host bridge, only over the networks they share.
   */
  async attach(containerId: string, pid: number, address: string, options: { internal?: boolean; isolated?: boolean } = {}): Promise<void> {
    await this.ensureBridge();
    const veth = hostVethName(containerId);
    const attach = (): Promise<void> =>
      this.ip(`attach ${containerId} to ${this.options.bridgeName}`, ['-batch', '-'], [
        `link add name ${veth} type veth peer name ${CONTAINER_INTERFACE} netns ${pid}`,
        `link set dev ${veth} master ${this.options.bridgeName} up`,
        ...(options.isolated === true ? [`link set dev ${veth} type bridge_slave isolated on`] : []),
      ]);
    try {
      await attach();
    } catch (error) {
      // A host veth of this name left by a crash: remove it and try once more. Deleting only
      // then saves an `ip` process on every start (bench/service-start.ts, phase "network").
      if (!(error instanceof NetworkError) || !/File exists/.test(error.message)) throw error;
      await runCommand(IP_PATH, ['link', 'del', 'dev', veth], { timeoutMs: IP_TIMEOUT_MS });
      await attach();
    }
    await this.ip(`configure ${CONTAINER_INTERFACE} of ${containerId}`, ['-batch', '-'], this.containerSideLines(address, options.internal === true), `/proc/${pid}/ns/net`);
    if (options.internal === true) await this.guardInternal(containerId, `/proc/${pid}/ns/net`);
  }

  /**
   * Makes the container's network namespace before the container exists, so that the work runs
   * beside the bundle's and `runc create` only joins it (config.json names `netnsPath`): one
   * `unshare --net=<netnsPath> ip -batch` creates the namespace, binds it at `netnsPath` (an
   * existing empty file; the namespace lives until that is unmounted), and inside it creates eth0
   * with its peer, the host veth, in this process's namespace, then the address and routes.
   * `plugHost` then puts the host veth on the bridge; it may run while `runc create` does.
   * The address and route set are those of `attach` (an `internal` container: /32 and a route to
   * the gateway only, and its nftables guard is loaded by `plugHost`).
   */
  async createNamespace(containerId: string, netnsPath: string, address: string, options: { internal?: boolean } = {}): Promise<void> {
    await this.ensureBridge();
    const veth = hostVethName(containerId);
    const lines = [`link add name ${CONTAINER_INTERFACE} type veth peer name ${veth} netns /proc/${process.pid}/ns/net`, ...this.containerSideLines(address, options.internal === true)];
    const action = `make the network namespace of ${containerId}`;
    const created = await runCommand(UNSHARE_PATH, [`--net=${netnsPath}`, '--', IP_PATH, '-batch', '-'], { timeoutMs: IP_TIMEOUT_MS, input: `${lines.join('\n')}\n` });
    if (created.exitCode === 0) return;
    // A host veth of this name left by a crash: remove it, then finish in the namespace unshare bound.
    if (!/File exists/.test(created.stderr)) throw new NetworkError(`cannot ${action}: ${firstLine(created.stderr) || `unshare exited with ${created.exitCode}`}`);
    await runCommand(IP_PATH, ['link', 'del', 'dev', veth], { timeoutMs: IP_TIMEOUT_MS });
    await this.ip(action, ['-batch', '-'], lines, netnsPath);
  }

  /** Puts the host veth of a namespace from `createNamespace` on the bridge (see `attach` for the options). */
  async plugHost(containerId: string, netnsPath: string, options: { internal?: boolean; isolated?: boolean } = {}): Promise<void> {
    const veth = hostVethName(containerId);
    const plug = this.ip(`attach ${containerId} to ${this.options.bridgeName}`, ['-batch', '-'], [
      `link set dev ${veth} master ${this.options.bridgeName} up`,
      ...(options.isolated === true ? [`link set dev ${veth} type bridge_slave isolated on`] : []),
    ]);
    const guard = options.internal === true ? this.guardInternal(containerId, netnsPath) : Promise.resolve();
    const [plugged, guarded] = await Promise.allSettled([plug, guard]);
    if (plugged.status === 'rejected') throw plugged.reason;
    if (guarded.status === 'rejected') throw guarded.reason;
  }

  /** eth0's address, link state and routes, as `ip -batch` lines run inside the container's namespace. */
  private containerSideLines(address: string, internal: boolean): string[] {
    return internal
      ? [`addr add ${address}/32 dev ${CONTAINER_INTERFACE}`, `link set dev ${CONTAINER_INTERFACE} up`, 'link set dev lo up', `route add ${this.gateway}/32 dev ${CONTAINER_INTERFACE} scope link`]
      : [`addr add ${address}/${this.subnet.prefixLength} dev ${CONTAINER_INTERFACE}`, `link set dev ${CONTAINER_INTERFACE} up`, 'link set dev lo up', `route add default via ${this.gateway} dev ${CONTAINER_INTERFACE}`];
  }

  /** Loads the nftables guard of an internal container into its namespace (a /proc/<pid>/ns/net or a bound file). */
  private async guardInternal(containerId: string, netns: string): Promise<void> {
    const result = await runCommand(NSENTER_PATH, [`--net=${netns}`, NFT_PATH, '-f', '-'], { timeoutMs: IP_TIMEOUT_MS, input: internalGuard(this.gateway) });
    if (result.exitCode !== 0) throw new NetworkError(`cannot guard internal container ${containerId}: nft: ${firstLine(result.stderr)}`);
  }

  /** Removes the host veth (if the netns still holds it) and frees the address. Idempotent. */
  async detach(containerId: string): Promise<void> {
    const result = await runCommand(IP_PATH, ['link', 'del', 'dev', hostVethName(containerId)], { timeoutMs: IP_TIMEOUT_MS });
    if (result.exitCode !== 0 && !linkAlreadyGone(result.stderr)) {
      throw new NetworkError(`cannot detach ${containerId}: ${firstLine(result.stderr)}`);
    }
    await this.ipam.release(containerId);
  }

  /** Addresses the container holds on the bridge. */
  addressesOf(containerId: string): Promise<string[]> {
    return this.ipam.addressesOf(containerId);
  }

  private async createBridge(): Promise<void> {
    const bridge = this.options.bridgeName;
    const shown = await runCommand(IP_PATH, ['-o', 'link', 'show', 'dev', bridge], { timeoutMs: IP_TIMEOUT_MS });
    if (shown.exitCode !== 0) {
      const added = await runCommand(IP_PATH, ['link', 'add', 'name', bridge, 'type', 'bridge'], { timeoutMs: IP_TIMEOUT_MS });
      if (added.exitCode !== 0 && !/File exists/.test(added.stderr)) {
        throw new NetworkError(`cannot create bridge ${bridge}: ${firstLine(added.stderr)}`);
      }
    } else if (!/\bbridge\b/.test((await runCommand(IP_PATH, ['-d', '-o', 'link', 'show', 'dev', bridge])).stdout)) {
      throw new NetworkError(`cannot use bridge ${bridge}: an interface of another type has that name`);
    }
    await this.ip(`configure bridge ${bridge}`, ['-batch', '-'], [
      `addr replace ${this.gateway}/${this.subnet.prefixLength} dev ${bridge}`,
      `link set dev ${bridge} up`,
    ]);
  }

  /** Runs `ip` with batch lines on stdin, inside the network namespace at `netns` when given. */
  private async ip(action: string, args: string[], lines: string[], netns?: string): Promise<void> {
    const [file, fullArgs] = netns === undefined ? [IP_PATH, args] : [NSENTER_PATH, [`--net=${netns}`, IP_PATH, ...args]];
    const result = await runCommand(file, fullArgs, { timeoutMs: IP_TIMEOUT_MS, input: `${lines.join('\n')}\n` });
    if (result.exitCode !== 0) throw new NetworkError(`cannot ${action}: ${firstLine(result.stderr) || `ip exited with ${result.exitCode}`}`);
  }
}

/**
 * Whether `ip link del` failed only because the device is gone: never there ("Cannot find
 * device"), or removed meanwhile, e.g. with its network namespace ("No such device").
 */
export function linkAlreadyGone(stderr: string): boolean {
  return /Cannot find device|does not exist|No such device/.test(stderr);
}

/** The nftables table of an internal container's netns: eth0 carries DNS to `gateway` and nothing else. */
export function internalGuard(gateway: string): string {
  return [
    'table inet skiff_internal {',
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    `    oifname "${CONTAINER_INTERFACE}" ip daddr ${gateway} meta l4proto { tcp, udp } th dport 53 accept`,
    `    oifname "${CONTAINER_INTERFACE}" drop`,
    '  }',
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    `    iifname "${CONTAINER_INTERFACE}" ip saddr ${gateway} meta l4proto { tcp, udp } th sport 53 accept`,
    `    iifname "${CONTAINER_INTERFACE}" drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Host-side veth name for a container: stable, at most 15 characters. */
export function hostVethName(containerId: string): string {
  return `sk${createHash('sha256').update(containerId).digest('hex').slice(0, 12)}`;
}
