/**
 * A service's isolation options, mounts and stop settings, checked at the API edge with the same
 * rules the agent applies (common/container-options.ts). Errors name the spec field and the index.
 * Limits that depend on a node (ulimits above its hard limits, a bind source that does not exist
 * there) can only be checked by that node's agent: the task then fails with the reason.
 */
import { mountProblem, mountSetProblem, normalizeCapability, parseSignal, sysctlProblem, ulimitProblem } from '../../common/container-options.js';
import type { ContainerSpec, ResourceRequirements } from '../../proto/skiff/v1/specs.js';
import { invalid } from './errors.js';
import { configPath, secretPath } from './validate-references.js';

/** Entries of each list (capabilities, sysctls, ulimits, mounts) at most. */
export const MAX_ISOLATION_ENTRIES = 128;
/** Longest stop grace period: a day. */
export const MAX_STOP_GRACE_PERIOD_MS = 24 * 3_600_000;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/;
const USER = /^[^:\s]+(?::[^:\s]+)?$/;

const refuse = (field: string, reason: string) => invalid(`cannot accept service spec: taskTemplate.container.${field}: ${reason}`);
/** Smallest memory limit a container can start under (Docker's minimum). */
export const MIN_MEMORY_LIMIT_BYTES = 6 * 1024 * 1024;

function checkCount(field: string, count: number): void {
  if (count > MAX_ISOLATION_ENTRIES) throw refuse(field, `${count} entries, more than ${MAX_ISOLATION_ENTRIES}`);
}

/** Throws ApiError('invalid_argument') naming the first bad field. */
export function validateIsolation(container: ContainerSpec): void {
  if (container.hostname !== '' && !HOSTNAME.test(container.hostname)) throw refuse('hostname', `"${container.hostname}" is not a valid host name (letters, digits, . and -, at most 63)`);
  if (container.user !== '' && !USER.test(container.user)) throw refuse('user', `"${container.user}" must be user[:group] (names or numeric ids)`);
  for (const field of ['capAdd', 'capDrop'] as const) {
    checkCount(field, container[field].length);
    for (const [index, name] of container[field].entries()) {
      const checked = normalizeCapability(name);
      if (!checked.ok) throw refuse(`${field}[${index}]`, checked.error);
    }
  }
  const sysctls = Object.entries(container.sysctls);
  checkCount('sysctls', sysctls.length);
  for (const [key, value] of sysctls) {
    const problem = sysctlProblem(key, value);
    if (problem !== undefined) throw refuse(`sysctls["${key}"]`, problem);
  }
  checkCount('ulimits', container.ulimits.length);
  const names = new Set<string>();
  for (const [index, ulimit] of container.ulimits.entries()) {
    const problem = ulimitProblem(ulimit) ?? (names.has(ulimit.name) ? `${ulimit.name} is given twice` : undefined);
    if (problem !== undefined) throw refuse(`ulimits[${index}]`, problem);
    names.add(ulimit.name);
  }
  checkCount('mounts', container.mounts.length);
  for (const [index, mount] of container.mounts.entries()) {
    const problem = mountProblem(mount);
    if (problem !== undefined) throw refuse(`mounts[${index}]`, problem);
  }
  const setProblem = mountSetProblem(container.mounts, [...container.secrets.map(secretPath), ...container.configs.map(configPath)]);
  if (setProblem !== undefined) throw refuse(`mounts[${setProblem.index}]`, setProblem.error);
  if (container.stopSignal !== '') {
    const signal = parseSignal(container.stopSignal);
    if (!signal.ok) throw refuse('stopSignal', signal.error);
  }
  const grace = container.stopGracePeriodMs;
  if (!Number.isSafeInteger(grace) || grace < 0 || grace > MAX_STOP_GRACE_PERIOD_MS) {
    throw refuse('stopGracePeriodMs', `${grace} must be a duration from 0 (the default, 10 s) to ${MAX_STOP_GRACE_PERIOD_MS} ms`);
  }
}

/**
 * Limits the kernel can enforce and reservations the scheduler can honour: a memory limit of at
 * least MIN_MEMORY_LIMIT_BYTES, and no reservation above its limit (the task could never use it).
 * Signs and integers are checked by validate-service.
 */
export function validateResourceBounds(resources: ResourceRequirements | undefined): void {
  const limits = resources?.limits;
  const reservations = resources?.reservations;
  const field = (name: string): string => `cannot accept service spec: taskTemplate.resources.${name}`;
  const memoryLimit = limits?.memoryBytes ?? 0;
  if (memoryLimit > 0 && memoryLimit < MIN_MEMORY_LIMIT_BYTES) {
    throw invalid(`${field('limits.memoryBytes')}: ${memoryLimit} bytes is below the minimum of ${MIN_MEMORY_LIMIT_BYTES} (6 MiB)`);
  }
  for (const name of ['memoryBytes', 'nanoCpus'] as const) {
    const limit = limits?.[name] ?? 0;
    const reserved = reservations?.[name] ?? 0;
    if (limit > 0 && reserved > limit) throw invalid(`${field(`reservations.${name}`)}: ${reserved} is above limits.${name} ${limit}`);
  }
}
