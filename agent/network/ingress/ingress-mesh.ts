/**
 * Keeps this host's routing-mesh table (ingress-plan.ts) equal to the dispatcher's ingress view:
 * one `nft -f` per change, none when the rules would not change, and the table removed when the
 * view goes (no service publishes a port any more). IP forwarding is switched on in this host's
 * network namespace the first time a published port needs it (the host forwards to its tasks
 * and to the other hosts); the forward chain keeps that to the mesh's own flows.
 *
 * The /32 routes to remote tasks (ingress-plan.ts `routes`) carry the protocol number
 * MESH_ROUTE_PROTO so that they can be told from every other route: new ones are added before the
 * table that sends traffic to them, stale ones removed after it; the first program also removes
 * what a previous process left.
 */
import { writeFile } from 'node:fs/promises';
import type { NetworksUpdate, NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { firstLine, runCommand } from '../../runtime/command.js';
import { errorMessage } from '../../runtime/fs-util.js';
import type { RuntimeLogger } from '../../runtime/log.js';
import { IP_PATH, NFT_PATH } from '../bridge-network.js';
import { type IngressPlan, ingressPlan, ingressRemoveScript, ingressScript, removedUdpTargets, type TaskRoute } from './ingress-plan.js';
import { CONNTRACK_PATH } from '../lb/container-lb.js';

export const INGRESS_VIEW_ID = 'ingress';
const NFT_TIMEOUT_MS = 15_000;
/** Route protocol of the mesh's task routes (unassigned in iproute2's rt_protos). */
export const MESH_ROUTE_PROTO = 83;

export interface IngressMeshOptions {
  /** This host's underlay IP. */
  localAddr: string;
  /** The containers' host bridge. */
  hostBridge: string;
  /** The host bridge's subnet: remote tasks in it are reached through their host, not routed to. */
  bridgeSubnet?: string;
  logger: RuntimeLogger;
  /** Default /proc/sys/net/ipv4/ip_forward. */
  ipForwardPath?: string;
}

export class IngressMesh {
  private view: NetworkView | undefined;
  private applied: string | undefined;
  private queue: Promise<void> = Promise.resolve();
  private forwarding = false;
  /** The plan of the table in place. */
  private appliedPlan: IngressPlan | undefined;
  /** Task routes in place (address -> via); undefined until the leftovers of a previous process were read. */
  private routes: Map<string, string> | undefined;

  constructor(private readonly options: IngressMeshOptions) {}

  /** Whether the task is a backend of a published port (in the ingress view). */
  hasTask(taskId: string): boolean {
    return taskId !== '' && (this.view?.endpoints.some((endpoint) => endpoint.taskId === taskId) ?? false);
  }

  /** Takes the ingress view out of a NetworksUpdate and reprograms the table if it changed. */
  apply(update: NetworksUpdate): Promise<void> {
    const view = update.views.find((candidate) => candidate.network?.meta?.id === INGRESS_VIEW_ID);
    if (view !== undefined) this.view = view;
    else if (update.full || update.removed.includes(INGRESS_VIEW_ID)) this.view = undefined;
    else return this.queue;
    const next = this.queue.then(() => this.program()).catch((error: unknown) => this.options.logger.warn('cannot program the routing mesh', { error: errorMessage(error) }));
    this.queue = next;
    return next;
  }

  private async program(): Promise<void> {
    const view = this.view;
    // After a restart the table of the last process may be there: the first program replaces or removes it.
    const wanted = new Map((view === undefined ? [] : ingressPlan(view, this.options.localAddr, this.options.bridgeSubnet).routes).map((route) => [route.address, route.via]));
    let current = this.routes ?? (await this.readRoutes());
    const added = [...wanted].filter(([address, via]) => current.get(address) !== via).map(([address, via]) => ({ address, via }));
    // Routes first: the rules may send traffic along them at once. A route the kernel refuses
    // (its host not on this link) leaves that task to be reached through its host.
    if (added.length > 0) current = await this.changeRoutes(added, []);
    const routed = new Set([...wanted].filter(([address, via]) => current.get(address) === via).map(([address]) => address));
    const plan = view === undefined ? undefined : ingressPlan(view, this.options.localAddr, this.options.bridgeSubnet, routed);
    const script = plan === undefined ? ingressRemoveScript() : ingressScript(plan, this.options.hostBridge);
    const stale = [...current.keys()].filter((address) => !wanted.has(address));
    if (script === this.applied && stale.length === 0) return;
    if (plan !== undefined && plan.rules.length > 0 && !this.forwarding) {
      await writeFile(this.options.ipForwardPath ?? '/proc/sys/net/ipv4/ip_forward', '1\n');
      this.forwarding = true;
    }
    if (script !== this.applied) {
      const result = await runCommand(NFT_PATH, ['-f', '-'], { timeoutMs: NFT_TIMEOUT_MS, input: script });
      if (result.exitCode !== 0) {
        this.applied = undefined;
        throw new Error(`nft: ${firstLine(result.stderr) || `exited with ${result.exitCode}`}`);
      }
      this.applied = script;
      const before = this.appliedPlan;
      this.appliedPlan = plan;
      for (const { published, address } of removedUdpTargets(before, plan)) {
        // Exit 1 means no entry matched; without the tool, the kernel's UDP timeout ends such flows.
        await runCommand(CONNTRACK_PATH, ['-D', '-p', 'udp', '--orig-port-dst', String(published), '--reply-src', address], { timeoutMs: NFT_TIMEOUT_MS }).catch(() => undefined);
      }
    }
    if (stale.length > 0) await this.changeRoutes([], stale);
    this.options.logger.info('routing mesh programmed', { ports: plan?.rules.map((rule) => `${rule.protocol}/${rule.published}->${rule.targets.length}`).join(' ') ?? 'none' });
  }

  /** The mesh's routes in this namespace, left by this or an earlier process. */
  private async readRoutes(): Promise<Map<string, string>> {
    const result = await runCommand(IP_PATH, ['-4', '-json', 'route', 'show', 'proto', String(MESH_ROUTE_PROTO)], { timeoutMs: NFT_TIMEOUT_MS });
    if (result.exitCode !== 0) throw new Error(`cannot list the routing mesh's routes: ${firstLine(result.stderr) || `ip exited with ${result.exitCode}`}`);
    const routes = new Map<string, string>();
    for (const route of parseRoutes(result.stdout)) routes.set(route.address, route.via);
    this.routes = routes;
    return routes;
  }

  /** Adds or replaces `added` and deletes `stale` in one `ip -batch`; the routes in place afterwards. */
  private async changeRoutes(added: TaskRoute[], stale: string[]): Promise<Map<string, string>> {
    const lines = [
      ...added.map((route) => `route replace ${route.address}/32 via ${route.via} proto ${MESH_ROUTE_PROTO}`),
      ...stale.map((address) => `route del ${address}/32 proto ${MESH_ROUTE_PROTO}`),
    ];
    // -force: one refused or already missing route must not keep the others from changing.
    const result = await runCommand(IP_PATH, ['-force', '-batch', '-'], { timeoutMs: NFT_TIMEOUT_MS, input: `${lines.join('\n')}\n` });
    if (result.exitCode !== 0) this.options.logger.warn('some routing mesh routes were refused', { error: firstLine(result.stderr) });
    // The next program starts from what is really there.
    this.routes = undefined;
    return this.readRoutes();
  }
}

/** `ip -json route show` output as task routes (only /32 destinations with a gateway). */
export function parseRoutes(json: string): TaskRoute[] {
  let value: unknown;
  try {
    value = JSON.parse(json === '' ? '[]' : json);
  } catch {
    throw new Error('cannot list the routing mesh\'s routes: ip printed no JSON');
  }
  if (!Array.isArray(value)) return [];
  const routes: TaskRoute[] = [];
  for (const entry of value as Array<Record<string, unknown>>) {
    const dst = typeof entry['dst'] === 'string' ? entry['dst'].replace(/\/32$/, '') : '';
    const via = typeof entry['gateway'] === 'string' ? entry['gateway'] : '';
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(dst) && via !== '') routes.push({ address: dst, via });
  }
  return routes;
}
