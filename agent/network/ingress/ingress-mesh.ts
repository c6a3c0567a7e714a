/**
 * Keeps this host's routing-mesh table (ingress-plan.ts) equal to the dispatcher's ingress view:
 * one `nft -f` per change, none when the rules would not change, and the table removed when the
 * view goes (no service publishes a port any more). IP forwarding is switched on in this host's
 * network namespace the first time a published port needs it (the host forwards to its tasks
 * and to the other hosts); the forward chain keeps that to the mesh's own flows.
 */
import { writeFile } from 'node:fs/promises';
import type { NetworksUpdate, NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { firstLine, runCommand } from '../../runtime/command.js';
import { errorMessage } from '../../runtime/fs-util.js';
import type { RuntimeLogger } from '../../runtime/log.js';
import { NFT_PATH } from '../bridge-network.js';
import { ingressPlan, ingressRemoveScript, ingressScript } from './ingress-plan.js';

export const INGRESS_VIEW_ID = 'ingress';
const NFT_TIMEOUT_MS = 15_000;

export interface IngressMeshOptions {
  /** This host's underlay IP. */
  localAddr: string;
  /** The containers' host bridge. */
  hostBridge: string;
  logger: RuntimeLogger;
  /** Default /proc/sys/net/ipv4/ip_forward. */
  ipForwardPath?: string;
}

export class IngressMesh {
  private view: NetworkView | undefined;
  private applied: string | undefined;
  private queue: Promise<void> = Promise.resolve();
  private forwarding = false;

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
    const plan = view === undefined ? undefined : ingressPlan(view, this.options.localAddr);
    const script = plan === undefined ? ingressRemoveScript() : ingressScript(plan, this.options.hostBridge);
    if (script === this.applied) return;
    if (plan !== undefined && plan.rules.length > 0 && !this.forwarding) {
      await writeFile(this.options.ipForwardPath ?? '/proc/sys/net/ipv4/ip_forward', '1\n');
      this.forwarding = true;
    }
    const result = await runCommand(NFT_PATH, ['-f', '-'], { timeoutMs: NFT_TIMEOUT_MS, input: script });
    if (result.exitCode !== 0) {
      this.applied = undefined;
      throw new Error(`nft: ${firstLine(result.stderr) || `exited with ${result.exitCode}`}`);
    }
    this.applied = script;
    this.options.logger.info('routing mesh programmed', { ports: plan?.rules.map((rule) => `${rule.protocol}/${rule.published}->${rule.targets.length}`).join(' ') ?? 'none' });
  }
}
