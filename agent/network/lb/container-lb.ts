/**
 * Applies each container's VIP load-balancing table (lb-plan.ts) in its network namespace with one
 * `nft -f` per change, and skips a container whose rules would not change: a view update costs a
 * transaction only in the containers whose backend sets it changed.
 */
import { runCommand, firstLine } from '../../runtime/command.js';
import type { RuntimeLogger } from '../../runtime/log.js';
import type { NetworkView } from '../../../proto/skiff/v1/dispatcher.js';
import { NetworkError, NSENTER_PATH } from '../bridge-network.js';
import { lbScript, removedBackends, type VipBackends, vipBackends } from './lb-plan.js';

export const NFT_PATH = '/usr/sbin/nft';
/** conntrack-tools; without it UDP flows keep their backend until their entry times out. */
export const CONNTRACK_PATH = '/usr/sbin/conntrack';
const NFT_TIMEOUT_MS = 15_000;

export class ContainerLoadBalancers {
  /** The script last applied per container. */
  private readonly applied = new Map<string, string>();
  private readonly sets = new Map<string, VipBackends[]>();

  constructor(private readonly logger: RuntimeLogger) {}

  /** Brings the container's table to its networks' views (no-op when nothing changed for it). */
  async program(containerId: string, pid: number, views: readonly NetworkView[]): Promise<void> {
    const vips = vipBackends(views);
    const script = lbScript(vips);
    if (this.applied.get(containerId) === script) return;
    const result = await runCommand(NSENTER_PATH, [`--net=/proc/${pid}/ns/net`, NFT_PATH, '-f', '-'], { timeoutMs: NFT_TIMEOUT_MS, input: script });
    if (result.exitCode !== 0) {
      this.applied.delete(containerId);
      throw new NetworkError(`cannot program the load balancer of ${containerId}: ${firstLine(result.stderr) || `nft exited with ${result.exitCode}`}`);
    }
    this.applied.set(containerId, script);
    const before = this.sets.get(containerId) ?? [];
    this.sets.set(containerId, vips);
    for (const { vip, backend } of removedBackends(before, vips)) {
      // Exit 1 means no entry matched; a missing tool is an error the kernel's timeouts make harmless.
      await runCommand(NSENTER_PATH, [`--net=/proc/${pid}/ns/net`, CONNTRACK_PATH, '-D', '-p', 'udp', '--orig-dst', vip, '--reply-src', backend], { timeoutMs: NFT_TIMEOUT_MS }).catch(() => undefined);
    }
    this.logger.info('container load balancer programmed', { containerId, vips: vips.map((entry) => `${entry.vip}->${entry.backends.length}`).join(' ') });
  }

  /** The container is gone (its namespace, and the table in it, with it). */
  forget(containerId: string): void {
    this.applied.delete(containerId);
    this.sets.delete(containerId);
  }
}
