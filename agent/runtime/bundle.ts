/**
 * Validates a ContainerRequest and lays out its OCI bundle: overlay rootfs, /etc files and
 * config.json. Everything here happens before the container exists.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { containerFilesProblem, type FileMount } from './container-files.js';
import { pathExists, readTextIfExists } from './fs-util.js';
import { DEFAULT_INIT_PATH, isolationProblem, requestCapabilities, serializeOciConfig, type HardLimits } from './isolation.js';
import { MountSourceError, prepareMounts } from './mounts.js';
import { buildOciSpec, DEFAULT_CAPABILITIES } from './oci-spec.js';
import { CONTAINER_ID_PATTERN, type RuntimePaths } from './paths.js';
import { containerResolvConf, hostsFileContent, mountOverlay } from './rootfs.js';
import { RuntimeError, type ContainerRequest } from './types.js';
import { resolveUser } from './user.js';

const HOSTNAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/;
const ENV_KEY_PATTERN = /^[^=\0]+=/;

/**
 * Returns the first problem with the request as "cannot run container ...: <field> ...", or
 * undefined. `hardLimits` are the agent's own (ulimits above them are refused).
 */
export function requestProblem(request: ContainerRequest, hardLimits: HardLimits = {}): string | undefined {
  const prefix = `cannot run container ${JSON.stringify(request.containerId)}`;
  if (!CONTAINER_ID_PATTERN.test(request.containerId)) return `${prefix}: containerId must match ${CONTAINER_ID_PATTERN.source}`;
  if (!HOSTNAME_PATTERN.test(request.hostname)) return `${prefix}: hostname ${JSON.stringify(request.hostname)} is not a valid host name`;
  if (request.layerDirs.length === 0) return `${prefix}: layerDirs is empty`;
  const badLayer = request.layerDirs.find((dir) => !path.isAbsolute(dir) || /[:,\0]/.test(dir));
  if (badLayer !== undefined) return `${prefix}: layer dir ${JSON.stringify(badLayer)} must be absolute without ':' or ','`;
  if (request.argv.length === 0 || request.argv[0] === '') return `${prefix}: argv is empty`;
  const badEnv = request.env.find((entry) => !ENV_KEY_PATTERN.test(entry));
  if (badEnv !== undefined) return `${prefix}: env entry ${JSON.stringify(badEnv)} is not KEY=VALUE`;
  if (request.workingDir !== '' && !path.posix.isAbsolute(request.workingDir)) return `${prefix}: workingDir must be absolute`;
  for (const field of ['memoryLimitBytes', 'nanoCpus', 'pidsLimit'] as const) {
    const value = request[field];
    if (!Number.isSafeInteger(value) || value < 0) return `${prefix}: ${field} must be a non-negative integer`;
  }
  const filesProblem = containerFilesProblem(request.files);
  if (filesProblem !== undefined) return `${prefix}: ${filesProblem}`;
  const isolation = isolationProblem(request, hardLimits);
  if (isolation !== undefined) return `${prefix}: ${isolation}`;
  return undefined;
}

export interface BundleInputs {
  request: ContainerRequest;
  paths: RuntimePaths;
  cgroupParent: string;
  nofileHardLimit: number;
  /** Reserved bridge addresses (named in /etc/hosts). */
  addresses: string[];
  hostResolvConf: string | undefined;
  /** The request's files, already on the container's tmpfs (none when absent). */
  fileMounts?: FileMount[];
  /** Host path of the static tini for `init` requests; default DEFAULT_INIT_PATH. */
  initPath?: string;
  /** The embedded DNS resolver's address; absent: the host's nameservers. */
  nameserver?: string;
  /** A network namespace already made for the container (config.json names it); absent: runc makes one. */
  netnsPath?: string;
}

/** Mounts the rootfs and writes the bundle's /etc files and config.json. */
export async function prepareBundle(inputs: BundleInputs): Promise<void> {
  const { request, paths } = inputs;
  const id = request.containerId;
  // The bundle's own files do not need the rootfs: they are written while `mount` runs. Both are
  // settled before any error goes up, so a teardown never races a write into the bundle.
  const settled = await Promise.allSettled([
    mountOverlay(request.layerDirs, {
      rootfs: paths.inBundle(id, 'rootfs'),
      upper: paths.inBundle(id, 'upper'),
      work: paths.inBundle(id, 'work'),
      links: paths.inBundle(id, 'layers'),
    }),
    fs.writeFile(paths.inBundle(id, 'hosts'), hostsFileContent(request.hostname, inputs.addresses)),
    fs.writeFile(paths.inBundle(id, 'resolv.conf'), containerResolvConf(inputs.hostResolvConf, inputs.nameserver)),
    fs.writeFile(paths.inBundle(id, 'hostname'), `${request.hostname}\n`),
    fs.mkdir(paths.inBundle(id, 'persist'), { recursive: true }),
  ]);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  const rootfs = paths.inBundle(id, 'rootfs');
  const initPath = inputs.initPath ?? DEFAULT_INIT_PATH;
  if (request.init === true && !(await pathExists(initPath))) {
    throw new RuntimeError('invalid_request', `cannot start container ${id}: init needs tini at ${initPath} on this node (Debian package tini), and it is not there`);
  }
  const userMounts = await prepareMounts(request.mounts ?? [], { stateDir: paths.stateDir, bundleDir: paths.bundleDir(id), rootfs }).catch((error: unknown) => {
    throw error instanceof MountSourceError ? new RuntimeError('invalid_request', `cannot start container ${id}: ${error.message}`) : error;
  });
  const [passwd, group] = await Promise.all([readRootfsFile(rootfs, 'etc/passwd'), readRootfsFile(rootfs, 'etc/group')]);
  const user = resolveUser(request.user, passwd, group);
  const spec = buildOciSpec({
    containerId: id,
    hostname: request.hostname,
    argv: request.argv,
    env: request.env,
    workingDir: request.workingDir,
    uid: user.uid,
    gid: user.gid,
    additionalGids: user.additionalGids,
    home: user.home,
    memoryLimitBytes: request.memoryLimitBytes,
    nanoCpus: request.nanoCpus,
    pidsLimit: request.pidsLimit,
    cgroupParent: inputs.cgroupParent,
    nofileHardLimit: inputs.nofileHardLimit,
    hostsPath: paths.inBundle(id, 'hosts'),
    resolvConfPath: paths.inBundle(id, 'resolv.conf'),
    hostnamePath: paths.inBundle(id, 'hostname'),
    fileMounts: inputs.fileMounts ?? [],
    capabilities: requestCapabilities(DEFAULT_CAPABILITIES, request),
    ulimits: request.ulimits ?? [],
    sysctls: request.sysctls ?? {},
    readOnlyRootfs: request.readOnlyRootfs === true,
    ...(request.init === true ? { initPath } : {}),
    userMounts,
    ...(inputs.netnsPath === undefined ? {} : { netnsPath: inputs.netnsPath }),
  });
  await fs.writeFile(paths.inBundle(id, 'config.json'), serializeOciConfig(spec));
}

/** Reads a regular file of the image; a symlink could point outside the rootfs, so it is ignored. */
async function readRootfsFile(rootfs: string, relativePath: string): Promise<string | undefined> {
  const filePath = path.join(rootfs, relativePath);
  const stat = await fs.lstat(filePath).catch(() => undefined);
  return stat?.isFile() ? readTextIfExists(filePath) : undefined;
}
