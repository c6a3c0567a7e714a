/**
 * The runtime's public face: `createRuntime` (runc + conmon + host bridge), the lab's cleanup
 * helpers, and the shared types.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BridgeNetwork } from '../network/bridge-network.js';
import { defaultRuntimeLogger, type RuntimeLogger } from './log.js';
import { parseHardLimits } from './isolation.js';
import { parseNofileHardLimit } from './oci-spec.js';
import { RuntimePaths } from './paths.js';
import { RuncClient } from './runc.js';
import { RuncRuntime } from './runc-runtime.js';
import { RuntimeError, type OverlayAttacher, type Runtime, type RuntimeOptions } from './types.js';

export * from './types.js';
export { cleanupRuntimeState, type RuntimeStateRoots } from './teardown.js';
export { killAllInCgroupParent } from './cgroups.js';
export type { RuntimeLogger } from './log.js';
export { volumeDataDir } from './mounts.js';

export interface RuntimeExtras {
  logger?: RuntimeLogger;
  /** Overlay networks (issue #8); without it a request with networks is refused. */
  overlay?: OverlayAttacher;
  /** Containers use the resolver on the host bridge's gateway address (agent/network/dns). */
  embeddedDns?: boolean;
}

/**
 * A Runtime for one host. Reads this process's RLIMIT_NOFILE hard limit once (containers never
 * get more), creates the state directories and starts watching conmon's exit files. The bridge
 * is created lazily on the first run(). Existing containers are left alone; list() adopts them.
 */
export async function createRuntime(options: RuntimeOptions, extras: RuntimeExtras = {}): Promise<Runtime> {
  for (const [field, value] of [['stateDir', options.stateDir], ['runcRoot', options.runcRoot], ['cgroupParent', options.cgroupParent], ['secretsDir', options.secretsDir]] as const) {
    if (!value.startsWith('/')) throw new RuntimeError('invalid_request', `cannot create runtime: ${field} must be an absolute path`);
  }
  if (isSameOrInside(options.secretsDir, options.stateDir) || isSameOrInside(options.stateDir, options.secretsDir)) {
    throw new RuntimeError('invalid_request', `cannot create runtime: secretsDir ${options.secretsDir} must be outside stateDir ${options.stateDir}`);
  }
  let network: BridgeNetwork;
  try {
    network = new BridgeNetwork({ stateDir: options.stateDir, bridgeName: options.bridgeName, bridgeSubnet: options.bridgeSubnet });
  } catch (error) {
    throw new RuntimeError('invalid_request', error instanceof Error ? error.message : String(error));
  }
  const limitsText = await fs.readFile('/proc/self/limits', 'utf8');
  const runtime = new RuncRuntime({
    paths: new RuntimePaths(options.stateDir, options.secretsDir),
    runc: new RuncClient(options.runcRoot),
    network,
    cgroupParent: options.cgroupParent,
    nofileHardLimit: parseNofileHardLimit(limitsText),
    hardLimits: parseHardLimits(limitsText),
    ...(options.initPath === undefined ? {} : { initPath: options.initPath }),
    logger: extras.logger ?? defaultRuntimeLogger(),
    ...(extras.overlay === undefined ? {} : { overlay: extras.overlay }),
    embeddedDns: extras.embeddedDns ?? false,
  });
  await runtime.init();
  return runtime;
}

function isSameOrInside(inner: string, outer: string): boolean {
  const relative = path.relative(outer, inner);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
