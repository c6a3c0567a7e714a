/**
 * A request's isolation options, checked and turned into their OCI shape: capabilities, rlimits
 * (never above this agent's own hard limits: it lacks CAP_SYS_RESOURCE to grant more), sysctls
 * and the init process. Pure: the caller reads /proc/self/limits once.
 */
import {
  describeRlimit, effectiveCapabilities, mountProblem, mountSetProblem, normalizeCapability, rlimitGreater, sysctlProblem, ULIMIT_LIMITS_LINES, ulimitProblem, UNLIMITED,
} from '../../common/container-options.js';
import type { ContainerRequest, ContainerUlimit } from './types.js';

/** Where `init` requests find tini inside the container (Docker uses /sbin/docker-init). */
export const INIT_CONTAINER_PATH = '/sbin/skiff-init';
/** Debian's statically linked tini (package `tini`): works in any image, libc or not. */
export const DEFAULT_INIT_PATH = '/usr/bin/tini-static';
/** Hard limits by ulimit name; Infinity = unlimited. */
export type HardLimits = Readonly<Record<string, number>>;

/** Parses every hard limit of /proc/<pid>/limits text, by ulimit name. */
export function parseHardLimits(limitsText: string): HardLimits {
  const result: Record<string, number> = {};
  const lines = limitsText.split('\n');
  for (const [name, label] of Object.entries(ULIMIT_LIMITS_LINES)) {
    const line = lines.find((candidate) => candidate.startsWith(`${label} `));
    if (line === undefined) continue;
    const hard = line.slice(label.length).trim().split(/\s+/)[1];
    if (hard === 'unlimited') result[name] = Number.POSITIVE_INFINITY;
    else if (hard !== undefined && /^\d+$/.test(hard)) result[name] = Number(hard);
  }
  return result;
}

/** The first problem with the request's isolation options ("<field> ..."), or undefined. */
export function isolationProblem(request: ContainerRequest, hardLimits: HardLimits): string | undefined {
  for (const field of ['capAdd', 'capDrop'] as const) {
    for (const name of request[field] ?? []) {
      const checked = normalizeCapability(name);
      if (!checked.ok) return `${field}: ${checked.error}`;
    }
  }
  for (const [key, value] of Object.entries(request.sysctls ?? {})) {
    const problem = sysctlProblem(key, value);
    if (problem !== undefined) return `sysctls: ${problem}`;
  }
  const seen = new Set<string>();
  for (const ulimit of request.ulimits ?? []) {
    const problem = ulimitProblem(ulimit) ?? hostLimitProblem(ulimit, hardLimits);
    if (problem !== undefined) return `ulimits: ${problem}`;
    if (seen.has(ulimit.name)) return `ulimits: ${ulimit.name} is given twice`;
    seen.add(ulimit.name);
  }
  const mounts = request.mounts ?? [];
  for (const [index, mount] of mounts.entries()) {
    const problem = mountProblem(mount);
    if (problem !== undefined) return `mounts[${index}]: ${problem}`;
  }
  const setProblem = mountSetProblem(mounts, [...request.files.map((file) => file.containerPath), ...(request.init === true ? [INIT_CONTAINER_PATH] : [])]);
  if (setProblem !== undefined) return `mounts[${setProblem.index}]: ${setProblem.error}`;
  return undefined;
}

function hostLimitProblem(ulimit: ContainerUlimit, hardLimits: HardLimits): string | undefined {
  const host = hardLimits[ulimit.name];
  if (host === undefined) return undefined;
  const hostValue = host === Number.POSITIVE_INFINITY ? UNLIMITED : host;
  if (!rlimitGreater(ulimit.hard, hostValue)) return undefined;
  return `${ulimit.name} hard limit ${describeRlimit(ulimit.hard)} is above this node's hard limit ${describeRlimit(hostValue)} (the agent cannot raise it)`;
}

/** The container's capability set (bounding = effective = permitted), Docker's rule. */
export function requestCapabilities(defaults: readonly string[], request: ContainerRequest): string[] {
  const normalize = (names: readonly string[]): string[] => names.map((name) => {
    const checked = normalizeCapability(name);
    if (!checked.ok) throw new Error(`assertion failed: capability ${name} was not checked`);
    return checked.value;
  });
  return effectiveCapabilities(defaults, normalize(request.capAdd ?? []), normalize(request.capDrop ?? []));
}

/** An OCI rlimit; `unlimited` stands for RLIM_INFINITY, which JSON numbers cannot carry exactly. */
export interface OciRlimit {
  type: string;
  hard: number | 'unlimited';
  soft: number | 'unlimited';
}

/** The ulimits as OCI rlimits, plus RLIMIT_NOFILE at `defaultNofile` when the request sets none. */
export function ociRlimits(ulimits: readonly ContainerUlimit[], defaultNofile: number): OciRlimit[] {
  const value = (limit: number): number | 'unlimited' => (limit === UNLIMITED ? 'unlimited' : limit);
  const result: OciRlimit[] = ulimits.map((ulimit) => ({ type: `RLIMIT_${ulimit.name.toUpperCase()}`, hard: value(ulimit.hard), soft: value(ulimit.soft) }));
  if (!ulimits.some((ulimit) => ulimit.name === 'nofile')) result.unshift({ type: 'RLIMIT_NOFILE', hard: defaultNofile, soft: defaultNofile });
  return result;
}

/** RLIM_INFINITY as runc reads it (a uint64). */
const RLIM_INFINITY_TEXT = '18446744073709551615';

/** config.json text: `"unlimited"` rlimit values become the exact uint64 RLIM_INFINITY. */
export function serializeOciConfig(spec: { process: { rlimits: OciRlimit[] } }): string {
  const text = JSON.stringify(spec, null, 2);
  return `${text.replace(/"(hard|soft)": "unlimited"/g, `"$1": ${RLIM_INFINITY_TEXT}`)}\n`;
}
