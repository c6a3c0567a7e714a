// lab.json: everything later `skiff lab` commands need about a lab. Written after every step of
// `lab up`, so an aborted `up` leaves a partial but valid file; `lab down` never depends on it.
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LAB_STATE_ROOT, checkLabName, labPaths } from './naming.js';

export type LabRole = 'manager' | 'worker';

/** One lab host. `pid` is the skiffd pid last started (0 when none); status checks it is alive. */
export interface LabHost {
  name: string;
  index: number;
  role: LabRole;
  addr: string;
  nodeId: string;
  pid: number;
  dataDir: string;
  runDir: string;
  runcRoot: string;
  controlSocket: string;
  cgroupParent: string;
  daemonCgroup: string;
  netns: string;
  veth: string;
  bridgeName: string;
  bridgeSubnet: string;
}

export interface LabState {
  version: 1;
  name: string;
  subnetIndex: number;
  bridge: string;
  bridgeAddr: string;
  /** `ip:port`; pid 0 until started. */
  registry: { addr: string; pid: number; dataDir: string };
  hosts: LabHost[];
  /** The CLI context that points at this lab (named like the lab). */
  contextName: string;
}

/** Reads a lab's state; undefined when the lab has no lab.json. Validates the shape once, here. */
export async function readLabState(lab: string): Promise<LabState | undefined> {
  const path = labPaths(lab).stateFile;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw error;
  }
  return parseLabState(text, path);
}

/** Writes a lab's state atomically. */
export async function writeLabState(state: LabState): Promise<void> {
  const path = labPaths(state.name).stateFile;
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`);
  await rename(temporary, path);
}

/** Subnet indexes claimed by every lab on this machine except `exceptLab`. */
export async function subnetIndexesOfOtherLabs(exceptLab: string): Promise<Set<number>> {
  const used = new Set<number>();
  let names: string[];
  try {
    names = await readdir(LAB_STATE_ROOT);
  } catch {
    return used;
  }
  for (const name of names) {
    if (name === exceptLab || !/^[a-z0-9]{1,8}$/.test(name)) continue;
    const state = await readLabState(name).catch(() => undefined);
    if (state !== undefined) used.add(state.subnetIndex);
  }
  return used;
}

/** Parses and validates lab.json text; errors name the file and the field. */
export function parseLabState(text: string, path: string): LabState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`cannot read ${path}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const fail = (field: string, expected: string): never => {
    throw new Error(`cannot read ${path}: field "${field}" must be ${expected}`);
  };
  if (!isRecord(raw)) return fail('(top level)', 'an object');
  if (raw['version'] !== 1) fail('version', '1');
  const name = stringField(raw, 'name', fail);
  checkLabName(name);
  const subnetIndex = raw['subnetIndex'];
  if (typeof subnetIndex !== 'number' || !Number.isInteger(subnetIndex) || subnetIndex < 0) fail('subnetIndex', 'a non-negative integer');
  const registry = raw['registry'];
  if (!isRecord(registry)) return fail('registry', 'an object');
  const hosts = raw['hosts'];
  if (!Array.isArray(hosts)) return fail('hosts', 'a list');
  return {
    version: 1,
    name,
    subnetIndex: subnetIndex as number,
    bridge: stringField(raw, 'bridge', fail),
    bridgeAddr: stringField(raw, 'bridgeAddr', fail),
    registry: {
      addr: stringField(registry, 'registry.addr', fail, 'addr'),
      pid: numberField(registry, 'registry.pid', fail, 'pid'),
      dataDir: stringField(registry, 'registry.dataDir', fail, 'dataDir'),
    },
    hosts: hosts.map((host: unknown, position) => parseHost(host, `hosts[${position}]`, fail)),
    contextName: stringField(raw, 'contextName', fail),
  };
}

type Fail = (field: string, expected: string) => never;

function parseHost(raw: unknown, where: string, fail: Fail): LabHost {
  if (!isRecord(raw)) return fail(where, 'an object');
  const role = raw['role'];
  if (role !== 'manager' && role !== 'worker') return fail(`${where}.role`, '"manager" or "worker"');
  const text = (key: string): string => stringField(raw, `${where}.${key}`, fail, key);
  return {
    name: text('name'),
    index: numberField(raw, `${where}.index`, fail, 'index'),
    role,
    addr: text('addr'),
    nodeId: text('nodeId'),
    pid: numberField(raw, `${where}.pid`, fail, 'pid'),
    dataDir: text('dataDir'),
    runDir: text('runDir'),
    runcRoot: text('runcRoot'),
    controlSocket: text('controlSocket'),
    cgroupParent: text('cgroupParent'),
    daemonCgroup: text('daemonCgroup'),
    netns: text('netns'),
    veth: text('veth'),
    bridgeName: text('bridgeName'),
    bridgeSubnet: text('bridgeSubnet'),
  };
}

function stringField(record: Record<string, unknown>, field: string, fail: Fail, key = field): string {
  const value = record[key];
  return typeof value === 'string' ? value : fail(field, 'a string');
}

function numberField(record: Record<string, unknown>, field: string, fail: Fail, key = field): number {
  const value = record[key];
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : fail(field, 'a non-negative integer');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
