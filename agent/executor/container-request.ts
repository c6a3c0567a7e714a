/** Turning a task's spec and its image's config into a runtime request, with Docker's merge rules. */
import type { Task } from '../../proto/skiff/v1/objects.js';
import type { Mount } from '../../proto/skiff/v1/specs.js';
import type { PulledImage } from '../image/types.js';
import type { ContainerFile, ContainerMount, ContainerNetwork, ContainerRequest } from '../runtime/types.js';

/** Labels the agent stores with each container to find its task again after a restart. */
export const TASK_ID_LABEL = 'skiff.task.id';
export const SERVICE_ID_LABEL = 'skiff.service.id';
/** Default pids limit for a task without one (bounds fork bombs). */
export const DEFAULT_PIDS_LIMIT = 4096;

/** The task's name as users see it and as its default hostname: `<service>.<slot>.<task id>`. */
export function taskName(task: Task): string {
  return `${task.serviceName}.${task.slot === 0 ? task.nodeId : task.slot}.${task.meta?.id ?? ''}`;
}

/** Longest host name the kernel and the runtime accept. */
const MAX_HOSTNAME_LENGTH = 63;

/** The task name as a host name: cut to 63 characters, without a trailing '.' or '-'. */
export function defaultHostname(task: Task): string {
  return taskName(task).slice(0, MAX_HOSTNAME_LENGTH).replace(/[.-]+$/, '');
}

/** The overlay networks of the task's spec, each with the address the allocator gave the task. */
export function overlayNetworks(task: Task): ContainerNetwork[] {
  return (task.spec?.networks ?? []).flatMap((networkId) => {
    const address = task.networks.find((attachment) => attachment.network === networkId)?.addresses[0];
    return address === undefined ? [] : [{ networkId, address }];
  });
}

/**
 * Command replaces the image's entrypoint (and drops its cmd); args replace the image's cmd.
 * Spec env entries override image env entries with the same key. `files` are the task's secret
 * and config files (see task-data.ts).
 */
export function containerRequest(task: Task, image: PulledImage, files: ContainerFile[] = []): ContainerRequest {
  const container = task.spec?.container;
  const command = container?.command ?? [];
  const args = container?.args ?? [];
  const entrypoint = command.length > 0 ? command : image.config.entrypoint;
  const cmd = args.length > 0 ? args : command.length > 0 ? [] : image.config.cmd;
  const env = new Map<string, string>();
  for (const entry of [...image.config.env, ...(container?.env ?? [])]) {
    const key = entry.includes('=') ? entry.slice(0, entry.indexOf('=')) : entry;
    env.set(key, entry.includes('=') ? entry : `${entry}=`);
  }
  const limits = task.spec?.resources?.limits;
  const id = task.meta?.id ?? '';
  return {
    containerId: id,
    hostname: container?.hostname || defaultHostname(task),
    layerDirs: image.layerDirs,
    argv: [...entrypoint, ...cmd],
    env: [...env.values()],
    user: container?.user || image.config.user,
    workingDir: container?.workdir || image.config.workingDir || '/',
    memoryLimitBytes: limits?.memoryBytes ?? 0,
    nanoCpus: limits?.nanoCpus ?? 0,
    pidsLimit: limits?.pids || DEFAULT_PIDS_LIMIT,
    labels: { [TASK_ID_LABEL]: id, [SERVICE_ID_LABEL]: task.serviceId },
    files,
    readOnlyRootfs: container?.readOnly ?? false,
    capAdd: [...(container?.capAdd ?? [])],
    capDrop: [...(container?.capDrop ?? [])],
    sysctls: { ...(container?.sysctls ?? {}) },
    ulimits: (container?.ulimits ?? []).map(({ name, soft, hard }) => ({ name, soft, hard })),
    init: container?.init ?? false,
    mounts: (container?.mounts ?? []).map(containerMount),
    networks: overlayNetworks(task),
  };
}

/** The spec's mount as the runtime takes it; the runtime refuses an unknown type. */
function containerMount(mount: Mount): ContainerMount {
  return {
    type: mount.type as ContainerMount['type'],
    source: mount.source,
    target: mount.target,
    readOnly: mount.readOnly,
    tmpfsSizeBytes: mount.tmpfsSizeBytes,
    tmpfsMode: mount.tmpfsMode,
  };
}

/** Signal and grace period that stop the task's container (Docker's defaults: SIGTERM, 10 s). */
export function stopOptions(task: Task, defaultGraceMs: number): { signal: string; timeoutMs: number } {
  const container = task.spec?.container;
  const grace = container?.stopGracePeriodMs ?? 0;
  return { signal: container?.stopSignal || 'SIGTERM', timeoutMs: grace > 0 ? grace : defaultGraceMs };
}
