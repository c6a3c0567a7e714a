/**
 * The overlay networks of one host: the views the dispatcher sends, the containers attached to
 * each network here, and the kernel devices that connect them (see overlay-plan.ts). Devices are
 * made when the first container of a network here attaches, reprogrammed when the network's view
 * changes, and removed once no container of the network is left here and the node no longer has
 * the network. Which container is on which network is kept in one file per container, so a
 * restarted agent adopts the devices and running containers keep their connectivity.
 *
 * All kernel changes go through one queue: an attach never races the removal of its devices.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { NetworksUpdate, NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { runCommand, firstLine } from '../../runtime/command.js';
import { errorMessage, readDirIfExists, readTextIfExists, writeFileAtomic } from '../../runtime/fs-util.js';
import type { RuntimeLogger } from '../../runtime/log.js';
import type { ContainerNetwork, OverlayAttacher } from '../../runtime/types.js';
import { IP_PATH, linkAlreadyGone, NetworkError, NSENTER_PATH } from '../bridge-network.js';
import { ContainerLoadBalancers } from '../lb/container-lb.js';
import {
  BRIDGE_PATTERN,
  bridgeName,
  containerHostLines,
  containerInnerLines,
  ensureDeviceLines,
  entryLines,
  overlayVethName,
  remoteEntries,
  type RemoteEntry,
  VXLAN_PATTERN,
  vxlanName,
  wireDeviceLines,
} from './overlay-plan.js';

export const BRIDGE_TOOL_PATH = '/usr/sbin/bridge';
/** How long a container waits for the view of a network it is to join. */
export const VIEW_WAIT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 15_000;

/** What one container holds on the overlay networks of this host (the per-container state file). */
export interface OverlayRecord {
  containerId: string;
  /** The container's address on the host bridge: how the DNS resolver knows who asks. */
  bridgeAddress: string;
  /** The container's init (its network namespace), for its load-balancer table. */
  pid?: number;
  networks: Array<{ networkId: string; vni: number; address: string; veth: string; inner: string }>;
}

export interface OverlayNetworksOptions {
  /** State goes under `<stateDir>/network/overlay`. */
  stateDir: string;
  /** This host's underlay IP (the VXLAN tunnel endpoint). */
  localAddr: string;
  logger: RuntimeLogger;
}

export class OverlayNetworks implements OverlayAttacher {
  private readonly views = new Map<string, NetworkView>();
  private readonly records = new Map<string, OverlayRecord>();
  /** What this process put on (or read from) each VXLAN device, by VNI. */
  private readonly programmed = new Map<number, Map<string, RemoteEntry>>();
  private readonly viewWaiters = new Set<() => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly dir: string;
  private readonly balancers: ContainerLoadBalancers;

  constructor(private readonly options: OverlayNetworksOptions) {
    this.dir = path.join(options.stateDir, 'network', 'overlay');
    this.balancers = new ContainerLoadBalancers(options.logger);
  }

  /** Loads the containers' records (live restore). Devices stay as they are until a view arrives. */
  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    for (const name of await readDirIfExists(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const record = JSON.parse((await readTextIfExists(path.join(this.dir, name))) ?? '') as OverlayRecord;
        this.records.set(record.containerId, record);
      } catch {
        this.options.logger.warn('ignoring an unreadable overlay record', { file: name });
      }
    }
  }

  /** Applies a dispatcher NetworksUpdate: stores the views and reprograms this host's devices. */
  apply(update: NetworksUpdate): Promise<void> {
    const changed: string[] = [];
    if (update.full) this.views.clear();
    for (const view of update.views) {
      const id = view.network?.meta?.id ?? '';
      this.views.set(id, view);
      changed.push(id);
    }
    for (const id of update.removed) this.views.delete(id);
    for (const wake of [...this.viewWaiters]) wake();
    return this.serialized(() => this.reconcile(update.full || update.removed.length > 0, changed));
  }

  /** The views of the networks the container with host-bridge address `address` is on, in attach order. */
  scopeOf(address: string): NetworkView[] {
    for (const record of this.records.values()) {
      if (record.bridgeAddress !== address) continue;
      return record.networks.map((network) => this.views.get(network.networkId)).filter((view) => view !== undefined);
    }
    return [];
  }

  async prepare(containerId: string, networks: readonly ContainerNetwork[]): Promise<{ internal: boolean }> {
    const views = await Promise.all(networks.map((network) => this.viewFor(containerId, network.networkId)));
    return { internal: views.length > 0 && views.every((view) => view.network?.spec?.internal === true) };
  }

  attach(containerId: string, pid: number, bridgeAddress: string, networks: readonly ContainerNetwork[]): Promise<void> {
    return this.serialized(async () => {
      const record: OverlayRecord = { containerId, bridgeAddress, pid, networks: [] };
      for (const [index, network] of networks.entries()) {
        const view = this.views.get(network.networkId);
        const vni = view?.network?.allocation?.vni;
        if (view === undefined || vni === undefined) throw new NetworkError(`cannot attach ${containerId} to network ${network.networkId}: the node has no view of it`);
        record.networks.push({ networkId: network.networkId, vni, address: network.address, veth: overlayVethName(containerId, network.networkId), inner: `eth${index + 1}` });
      }
      // Recorded first: a crash from here on leaves a record for detach to clean up after.
      this.records.set(containerId, record);
      await writeFileAtomic(this.recordPath(containerId), `${JSON.stringify(record)}\n`);
      for (const network of record.networks) {
        const view = this.views.get(network.networkId);
        if (view !== undefined) await this.ensureDevices(network.vni, view);
        await runCommand(IP_PATH, ['link', 'del', 'dev', network.veth], { timeoutMs: COMMAND_TIMEOUT_MS }); // a crash's leftover
        await this.ip(`attach ${containerId} to ${bridgeName(network.vni)}`, containerHostLines(network.vni, network.veth, network.inner, pid));
        await this.ip(`configure ${network.inner} of ${containerId}`, containerInnerLines(network.inner, network.address), pid);
      }
      await this.balancers.program(containerId, pid, this.viewsOf(record));
    });
  }

  detach(containerId: string): Promise<void> {
    return this.serialized(async () => {
      const record = this.records.get(containerId);
      if (record === undefined) return;
      for (const network of record.networks) {
        const result = await runCommand(IP_PATH, ['link', 'del', 'dev', network.veth], { timeoutMs: COMMAND_TIMEOUT_MS });
        if (result.exitCode !== 0 && !linkAlreadyGone(result.stderr)) {
          throw new NetworkError(`cannot detach ${containerId} from ${bridgeName(network.vni)}: ${firstLine(result.stderr)}`);
        }
      }
      this.records.delete(containerId);
      this.balancers.forget(containerId);
      await fs.rm(this.recordPath(containerId), { force: true });
      for (const network of record.networks) await this.removeIfUnused(network.vni);
    });
  }

  /**
   * Reprograms the changed networks that have devices here; when networks may have gone (a full
   * update, or removals), every overlay device no container and no view needs is removed.
   */
  private async reconcile(sweep: boolean, changed: readonly string[]): Promise<void> {
    for (const id of changed) {
      const view = this.views.get(id);
      const vni = view?.network?.allocation?.vni;
      if (view === undefined || vni === undefined || !this.usedLocally(vni)) continue;
      await this.ensureDevices(vni, view).catch((error: unknown) => this.options.logger.warn('cannot program overlay network', { vni, error: errorMessage(error) }));
    }
    await this.rebalance(changed);
    if (!sweep) return;
    for (const vni of await this.presentVnis()) await this.removeIfUnused(vni);
  }

  /** Reprograms the load balancer of each container on a changed network (each skips when its rules are unchanged). */
  private async rebalance(changed: readonly string[]): Promise<void> {
    const ids = new Set(changed);
    for (const record of this.records.values()) {
      if (record.pid === undefined || !record.networks.some((network) => ids.has(network.networkId))) continue;
      if (!(await pidAlive(record.pid))) continue;
      await this.balancers.program(record.containerId, record.pid, this.viewsOf(record)).catch((error: unknown) => this.options.logger.warn('cannot program load balancer', { containerId: record.containerId, error: errorMessage(error) }));
    }
  }

  private viewsOf(record: OverlayRecord): NetworkView[] {
    return record.networks.map((network) => this.views.get(network.networkId)).filter((view) => view !== undefined);
  }

  private usedLocally(vni: number): boolean {
    return [...this.records.values()].some((record) => record.networks.some((network) => network.vni === vni));
  }

  private viewOfVni(vni: number): NetworkView | undefined {
    return [...this.views.values()].find((view) => view.network?.allocation?.vni === vni);
  }

  private async removeIfUnused(vni: number): Promise<void> {
    if (!this.usedLocally(vni) && this.viewOfVni(vni) === undefined) await this.removeDevices(vni);
  }

  private async viewFor(containerId: string, networkId: string): Promise<NetworkView> {
    const deadline = Date.now() + VIEW_WAIT_MS;
    for (;;) {
      const view = this.views.get(networkId);
      if (view?.network?.allocation !== undefined) return view;
      const left = deadline - Date.now();
      if (left <= 0) throw new NetworkError(`cannot attach ${containerId} to network ${networkId}: no view of it from the manager within ${VIEW_WAIT_MS} ms`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.viewWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.viewWaiters.add(wake);
      });
    }
  }

  /** Creates the bridge and VXLAN device if missing and brings the forwarding entries to the view. */
  private async ensureDevices(vni: number, view: NetworkView): Promise<void> {
    let current = this.programmed.get(vni);
    if (current === undefined) {
      // First time in this process: make (or adopt) the devices and read what they hold.
      for (const args of ensureDeviceLines(vni, this.options.localAddr)) {
        const result = await runCommand(IP_PATH, args, { timeoutMs: COMMAND_TIMEOUT_MS });
        if (result.exitCode !== 0 && !/File exists/.test(result.stderr)) throw new NetworkError(`cannot create ${args[2] ?? ''}: ${firstLine(result.stderr)}`);
      }
      await this.ip(`wire overlay network ${vni}`, wireDeviceLines(vni));
      current = await this.readEntries(vni);
      this.options.logger.info('overlay network on host: absent -> present', { vni, networkId: view.network?.meta?.id, adoptedEntries: current.size });
    }
    const desired = remoteEntries(view, this.options.localAddr);
    const { fdb, neigh } = entryLines(vni, current, desired);
    if (fdb.length > 0) await this.batch(BRIDGE_TOOL_PATH, `program forwarding entries of ${vxlanName(vni)}`, fdb, true);
    if (neigh.length > 0) await this.batch(IP_PATH, `program neighbour entries of ${vxlanName(vni)}`, neigh, true);
    this.programmed.set(vni, desired);
  }

  /** The entries the kernel holds on the VXLAN device (after a restart this process knows none). */
  private async readEntries(vni: number): Promise<Map<string, RemoteEntry>> {
    const neigh = await runCommand(IP_PATH, ['-j', 'neigh', 'show', 'dev', vxlanName(vni)], { timeoutMs: COMMAND_TIMEOUT_MS });
    const fdb = await runCommand(BRIDGE_TOOL_PATH, ['-j', 'fdb', 'show', 'dev', vxlanName(vni)], { timeoutMs: COMMAND_TIMEOUT_MS });
    const entries = new Map<string, RemoteEntry>();
    const destinations = new Map<string, string>();
    for (const entry of parseJsonArray(fdb.stdout)) if (typeof entry['mac'] === 'string' && typeof entry['dst'] === 'string') destinations.set(entry['mac'], entry['dst']);
    for (const entry of parseJsonArray(neigh.stdout)) {
      const address = entry['dst'];
      const mac = entry['lladdr'];
      if (typeof address === 'string' && typeof mac === 'string') entries.set(address, { address, mac, nodeAddr: destinations.get(mac) ?? '' });
    }
    return entries;
  }

  private async presentVnis(): Promise<number[]> {
    const shown = await runCommand(IP_PATH, ['-o', 'link', 'show'], { timeoutMs: COMMAND_TIMEOUT_MS });
    const vnis = new Set<number>();
    for (const line of shown.stdout.split('\n')) {
      const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '';
      const match = BRIDGE_PATTERN.exec(name) ?? VXLAN_PATTERN.exec(name);
      if (match?.[1] !== undefined) vnis.add(Number(match[1]));
    }
    return [...vnis];
  }

  private async removeDevices(vni: number): Promise<void> {
    for (const device of [vxlanName(vni), bridgeName(vni)]) {
      const result = await runCommand(IP_PATH, ['link', 'del', 'dev', device], { timeoutMs: COMMAND_TIMEOUT_MS });
      if (result.exitCode !== 0 && !linkAlreadyGone(result.stderr)) {
        this.options.logger.warn('cannot remove overlay device', { device, error: firstLine(result.stderr) });
      }
    }
    this.programmed.delete(vni);
    this.options.logger.info('overlay network on host: present -> absent', { vni });
  }

  private recordPath(containerId: string): string {
    return path.join(this.dir, `${containerId}.json`);
  }

  private serialized<T>(action: () => Promise<T>): Promise<T> {
    const next = this.queue.catch(() => undefined).then(action);
    this.queue = next;
    return next;
  }

  private ip(action: string, lines: string[], netnsPid?: number): Promise<void> {
    if (netnsPid === undefined) return this.batch(IP_PATH, action, lines, false);
    return this.batch(NSENTER_PATH, action, lines, false, [`--net=/proc/${netnsPid}/ns/net`, IP_PATH]);
  }

  /** Runs batch lines; with `force`, a failing line does not stop the rest (entries may already be gone). */
  private async batch(file: string, action: string, lines: string[], force: boolean, prefix: string[] = []): Promise<void> {
    const args = [...prefix, ...(force ? ['-force'] : []), '-batch', '-'];
    const result = await runCommand(file, args, { timeoutMs: COMMAND_TIMEOUT_MS, input: `${lines.join('\n')}\n` });
    if (result.exitCode !== 0 && !force) throw new NetworkError(`cannot ${action}: ${firstLine(result.stderr) || `exited with ${result.exitCode}`}`);
    if (result.exitCode !== 0) this.options.logger.warn(`some entries failed: ${action}`, { error: firstLine(result.stderr) });
  }
}

async function pidAlive(pid: number): Promise<boolean> {
  try {
    await fs.access(`/proc/${pid}/ns/net`);
    return true;
  } catch {
    return false;
  }
}

function parseJsonArray(text: string): Array<Record<string, unknown>> {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? (value as Array<Record<string, unknown>>) : [];
  } catch {
    return [];
  }
}
