/**
 * What the runtime remembers about a container beside its bundle (meta.json): labels, addresses
 * and times. runc and conmon own the rest (state, pid, exit code); this file never claims them.
 */
import { isProcessAlive, processArgv, readTextIfExists, writeFileAtomic } from './fs-util.js';
import type { RuntimePaths } from './paths.js';

export interface ContainerRecord {
  containerId: string;
  hostname: string;
  labels: Record<string, string>;
  addresses: string[];
  createdAtMs: number;
  /** 0 until `runc start` succeeded. */
  startedAtMs: number;
}

export async function writeRecord(paths: RuntimePaths, record: ContainerRecord): Promise<void> {
  await writeFileAtomic(paths.inBundle(record.containerId, 'meta.json'), `${JSON.stringify(record, null, 2)}\n`);
}

/** The record, or undefined when the container has no (readable) meta.json. */
export async function readRecord(paths: RuntimePaths, containerId: string): Promise<ContainerRecord | undefined> {
  const text = await readTextIfExists(paths.inBundle(containerId, 'meta.json'));
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // torn by a crash mid-run: treated as unknown, cleaned by remove()
  }
  return parseRecord(value, containerId);
}

function parseRecord(value: unknown, containerId: string): ContainerRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const labels = record['labels'];
  const addresses = record['addresses'];
  if (
    record['containerId'] !== containerId ||
    typeof record['hostname'] !== 'string' ||
    typeof labels !== 'object' || labels === null ||
    !Array.isArray(addresses) ||
    typeof record['createdAtMs'] !== 'number' ||
    typeof record['startedAtMs'] !== 'number'
  ) {
    return undefined;
  }
  const stringLabels: Record<string, string> = {};
  for (const [key, labelValue] of Object.entries(labels)) if (typeof labelValue === 'string') stringLabels[key] = labelValue;
  return {
    containerId,
    hostname: record['hostname'],
    labels: stringLabels,
    addresses: addresses.filter((address): address is string => typeof address === 'string'),
    createdAtMs: record['createdAtMs'],
    startedAtMs: record['startedAtMs'],
  };
}

/** Pid of the container's conmon when that process is still alive and really is its conmon. */
export async function liveConmonPid(paths: RuntimePaths, containerId: string): Promise<number | undefined> {
  const pid = Number((await readTextIfExists(paths.inBundle(containerId, 'conmon.pid')))?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return undefined;
  const argv = await processArgv(pid);
  const isOurs = argv !== undefined && (argv[0] ?? '').endsWith('conmon') && argv.includes(paths.bundleDir(containerId));
  return isOurs ? pid : undefined;
}

/** Exit code from conmon's exit file, or undefined when it has not been (fully) written. */
export async function readExitCode(paths: RuntimePaths, containerId: string): Promise<number | undefined> {
  const text = (await readTextIfExists(paths.exitFile(containerId)))?.trim();
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}
