// Names and addresses of everything a lab makes. Pure: no I/O. Users' scripts depend on these
// exact names, and `lab down` finds an aborted lab's objects by them, so change them never lightly.
//
//   root netns:  bridge sk-<LAB> 198.18.S.1/24, veth sk<LAB>hN (bridge side), registry 198.18.S.1:PORT
//   host hN:     netns skiff-<LAB>-hN, eth0 198.18.S.(10+N)/24, skiffd on :4242, bridge skiff0 198.18.(128+N).0/24
//   cgroups:     /skiff-lab-<LAB>/hN (containers), /skiff-lab-<LAB>/hN-daemon (skiffd, conmon), /skiff-lab-<LAB>/registry
//   files:       /var/lib/skiff-lab/<LAB>/ (lab.json, hN/, registry/, images/), /run/skiff-lab/<LAB>/hN/

/** The lab used when neither --name nor $SKIFF_LAB says otherwise. */
export const DEFAULT_LAB_NAME = 'lab';
/** Lab names: short enough that every derived interface name fits IFNAMSIZ (15 characters). */
export const LAB_NAME_PATTERN = /^[a-z0-9]{1,8}$/;
/** Most hosts in one lab: host addresses are .(10+N) and host bridges 198.18.(128+N).0/24. */
export const MAX_HOSTS = 100;
/** Linux interface names are at most 15 bytes (IFNAMSIZ - 1). */
export const MAX_INTERFACE_NAME_LENGTH = 15;
/** Subnet indexes a lab's bridge may use: 198.18.S.0/24; 128 and up belong to the host bridges. */
export const MAX_SUBNET_INDEX = 127;
/** gRPC port of every skiffd (DESIGN.md §1). */
export const SKIFFD_PORT = 4242;
/** Overlay network subnets of every lab (issue #8): inside the benchmarking range, never routed anywhere. */
export const LAB_ADDRESS_POOL = '198.19.0.0/16';
export const DEFAULT_REGISTRY_PORT = 5000;
export const LAB_STATE_ROOT = '/var/lib/skiff-lab';
export const LAB_RUN_ROOT = '/run/skiff-lab';
export const NETNS_DIR = '/var/run/netns';
/** Name of the per-host container bridge, inside each host's netns. */
export const HOST_BRIDGE_NAME = 'skiff0';
const ADDRESS_PREFIX = '198.18';
const FIRST_HOST_OCTET = 10;
const FIRST_HOST_BRIDGE_OCTET = 128;

/** Throws unless `name` is a valid lab name. */
export function checkLabName(name: string): void {
  if (!LAB_NAME_PATTERN.test(name)) {
    throw new Error(`cannot use lab name "${name}": it must match ${LAB_NAME_PATTERN.source}`);
  }
}

/** `h<index>`, index from 1. */
export function hostName(index: number): string {
  return `h${index}`;
}

/** The index of `h<N>`, or undefined when `name` is not a host name. */
export function hostIndex(name: string): number | undefined {
  const match = /^h([1-9]\d*)$/.exec(name);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** Every name and path of one lab, derived from its name alone. */
export function labPaths(lab: string): {
  stateDir: string;
  stateFile: string;
  runDir: string;
  registryDir: string;
  imagesDir: string;
  bridge: string;
  cgroupRoot: string;
  registryCgroup: string;
  netnsPrefix: string;
  vethPattern: RegExp;
} {
  checkLabName(lab);
  const stateDir = `${LAB_STATE_ROOT}/${lab}`;
  return {
    stateDir,
    stateFile: `${stateDir}/lab.json`,
    runDir: `${LAB_RUN_ROOT}/${lab}`,
    registryDir: `${stateDir}/registry`,
    imagesDir: `${stateDir}/images`,
    bridge: `sk-${lab}`,
    cgroupRoot: `/skiff-lab-${lab}`,
    registryCgroup: `/skiff-lab-${lab}/registry`,
    netnsPrefix: `skiff-${lab}-`,
    // The part after the last "h" is all digits, so two labs' veth names can never coincide.
    vethPattern: new RegExp(`^sk${lab}h[1-9][0-9]*$`),
  };
}

/** Every name, path and address of host `index` in `lab` whose bridge uses subnet `subnetIndex`. */
export function hostLayout(lab: string, index: number, subnetIndex: number): {
  name: string;
  netns: string;
  netnsPath: string;
  veth: string;
  addr: string;
  listenAddr: string;
  dataDir: string;
  runDir: string;
  runcRoot: string;
  controlSocket: string;
  cgroupParent: string;
  daemonCgroup: string;
  bridgeName: string;
  bridgeSubnet: string;
} {
  checkLabName(lab);
  if (!Number.isInteger(index) || index < 1 || index > MAX_HOSTS) throw new Error(`cannot lay out host ${index}: index must be in 1..${MAX_HOSTS}`);
  const name = hostName(index);
  const addr = hostAddress(subnetIndex, index);
  const runDir = `${LAB_RUN_ROOT}/${lab}/${name}`;
  return {
    name,
    netns: `skiff-${lab}-${name}`,
    netnsPath: `${NETNS_DIR}/skiff-${lab}-${name}`,
    veth: `sk${lab}${name}`,
    addr,
    listenAddr: `${addr}:${SKIFFD_PORT}`,
    dataDir: `${LAB_STATE_ROOT}/${lab}/${name}`,
    runDir,
    runcRoot: `${runDir}/runc`,
    controlSocket: `${runDir}/skiff.sock`,
    cgroupParent: `/skiff-lab-${lab}/${name}`,
    daemonCgroup: `/skiff-lab-${lab}/${name}-daemon`,
    bridgeName: HOST_BRIDGE_NAME,
    bridgeSubnet: `${ADDRESS_PREFIX}.${FIRST_HOST_BRIDGE_OCTET + index}.0/24`,
  };
}

/** 198.18.S.1: the lab bridge's address in the root netns, where the registry listens. */
export function bridgeAddress(subnetIndex: number): string {
  checkSubnetIndex(subnetIndex);
  return `${ADDRESS_PREFIX}.${subnetIndex}.1`;
}

/** 198.18.S.(10+N): host N's address on the lab bridge. */
export function hostAddress(subnetIndex: number, index: number): string {
  checkSubnetIndex(subnetIndex);
  return `${ADDRESS_PREFIX}.${subnetIndex}.${FIRST_HOST_OCTET + index}`;
}

/** 198.18.S.0/24. */
export function labSubnet(subnetIndex: number): string {
  checkSubnetIndex(subnetIndex);
  return `${ADDRESS_PREFIX}.${subnetIndex}.0/24`;
}

function checkSubnetIndex(subnetIndex: number): void {
  if (!Number.isInteger(subnetIndex) || subnetIndex < 0 || subnetIndex > MAX_SUBNET_INDEX) {
    throw new Error(`cannot use subnet index ${subnetIndex}: it must be in 0..${MAX_SUBNET_INDEX}`);
  }
}

/**
 * The subnet index for a new lab: 0 for the default lab when 198.18.0.0/24 is free, otherwise the
 * first index in 1..MAX_SUBNET_INDEX whose /24 overlaps no route in `routes` (CIDRs or bare
 * addresses from `ip -4 route`) and no index in `usedByLabs`. Undefined when all are taken.
 */
export function chooseSubnetIndex(lab: string, routes: readonly string[], usedByLabs: ReadonlySet<number>): number | undefined {
  const candidates = lab === DEFAULT_LAB_NAME ? [0] : [];
  for (let index = 1; index <= MAX_SUBNET_INDEX; index += 1) candidates.push(index);
  const parsedRoutes = routes.map(parseCidr).filter((route): route is Cidr => route !== undefined);
  return candidates.find((index) => {
    if (usedByLabs.has(index)) return false;
    const mine = parseCidr(labSubnet(index));
    return mine !== undefined && !parsedRoutes.some((route) => overlaps(route, mine));
  });
}

interface Cidr {
  network: number;
  prefixLength: number;
}

/** Parses `a.b.c.d/n` or `a.b.c.d` (a /32). `default` is 0.0.0.0/0, which overlaps nothing we care about. */
export function parseCidr(text: string): Cidr | undefined {
  if (text === 'default') return undefined;
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(text);
  if (!match) return undefined;
  const octets = match.slice(1, 5).map(Number);
  if (octets.some((octet) => octet > 255)) return undefined;
  const prefixLength = match[5] === undefined ? 32 : Number(match[5]);
  if (prefixLength > 32) return undefined;
  const address = octets.reduce((total, octet) => total * 256 + octet, 0);
  return { network: maskAddress(address, prefixLength), prefixLength };
}

function maskAddress(address: number, prefixLength: number): number {
  const size = 2 ** (32 - prefixLength);
  return Math.floor(address / size) * size;
}

function overlaps(a: Cidr, b: Cidr): boolean {
  const shorter = Math.min(a.prefixLength, b.prefixLength);
  return maskAddress(a.network, shorter) === maskAddress(b.network, shorter);
}
