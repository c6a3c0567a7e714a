import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostVethName, linkAlreadyGone } from './bridge-network.js';
import { FileIpam } from './ipam.js';
import { containerAddressRange, formatAddress, gatewayAddress, parseSubnet } from './subnet.js';

const scratchDirs: string[] = [];

afterEach(async () => {
  for (const dir of scratchDirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function scratch(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-ipam-'));
  scratchDirs.push(dir);
  return dir;
}

describe('subnet', () => {
  it('subnet parse gives gateway first and container range before broadcast', () => {
    const subnet = parseSubnet('198.18.129.0/24');
    expect(formatAddress(gatewayAddress(subnet))).toBe('198.18.129.1');
    const range = containerAddressRange(subnet);
    expect([formatAddress(range.first), formatAddress(range.last)]).toEqual(['198.18.129.2', '198.18.129.254']);
  });

  it('subnet parse refuses host bits, bad prefixes and junk', () => {
    expect(() => parseSubnet('198.18.129.5/24')).toThrow(/host bits/);
    expect(() => parseSubnet('198.18.129.0/31')).toThrow(/cannot parse subnet/);
    expect(() => parseSubnet('300.1.1.0/24')).toThrow(/cannot parse IPv4 address/);
    expect(() => parseSubnet('nope')).toThrow(/cannot parse subnet/);
  });

  it('veth names are stable and fit IFNAMSIZ', () => {
    expect(hostVethName('a'.repeat(64))).toHaveLength(14);
    expect(hostVethName('x')).toBe(hostVethName('x'));
    expect(hostVethName('x')).not.toBe(hostVethName('y'));
  });

  it('a link deletion counts as done only when the device is gone', () => {
    expect(linkAlreadyGone('Cannot find device "sk1234"')).toBe(true);
    expect(linkAlreadyGone('RTNETLINK answers: No such device')).toBe(true);
    expect(linkAlreadyGone('RTNETLINK answers: Operation not permitted')).toBe(false);
    expect(linkAlreadyGone('')).toBe(false);
  });
});

describe('FileIpam', () => {
  it('ipam hands out distinct addresses, is idempotent per container and does not reuse at once', async () => {
    const ipam = new FileIpam(await scratch(), parseSubnet('198.18.250.0/29'));
    const first = await ipam.allocate('a');
    expect(first).toBe('198.18.250.2');
    expect(await ipam.allocate('a')).toBe(first);
    expect(await ipam.allocate('b')).toBe('198.18.250.3');
    await ipam.release('a');
    expect(await ipam.allocate('c')).toBe('198.18.250.4');
    expect(await ipam.addressesOf('a')).toEqual([]);
    await ipam.release('a');
  });

  it('ipam fails clearly when the subnet is full and recovers after a release', async () => {
    const ipam = new FileIpam(await scratch(), parseSubnet('198.18.250.0/30'));
    expect(await ipam.allocate('a')).toBe('198.18.250.2');
    await expect(ipam.allocate('b')).rejects.toThrow(/cannot allocate an address for b: all 1 addresses/);
    await ipam.release('a');
    expect(await ipam.allocate('b')).toBe('198.18.250.2');
  });

  it('ipam claims are atomic across concurrent allocations', async () => {
    const ipam = new FileIpam(await scratch(), parseSubnet('198.18.250.0/26'));
    const addresses = await Promise.all(Array.from({ length: 40 }, (_value, index) => ipam.allocate(`c${index}`)));
    expect(new Set(addresses).size).toBe(40);
  });
});
