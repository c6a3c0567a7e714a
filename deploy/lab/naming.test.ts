import { describe, expect, it } from 'vitest';
import { MAX_INTERFACE_NAME_LENGTH, MAX_HOSTS, bridgeAddress, checkLabName, chooseSubnetIndex, hostIndex, hostLayout, labPaths, parseCidr } from './naming.js';

describe('lab naming', () => {
  it('checkLabName accepts [a-z0-9]{1,8} only', () => {
    for (const good of ['lab', 'a', 'abcd1234']) expect(() => checkLabName(good)).not.toThrow();
    for (const bad of ['', 'abcd12345', 'Lab', 'a-b', 'a/b']) expect(() => checkLabName(bad)).toThrow(/lab name/);
  });

  it('hostLayout gives the documented names, addresses and paths', () => {
    expect(hostLayout('lab', 2, 0)).toEqual({
      name: 'h2',
      netns: 'skiff-lab-h2',
      netnsPath: '/var/run/netns/skiff-lab-h2',
      veth: 'sklabh2',
      addr: '198.18.0.12',
      listenAddr: '198.18.0.12:4242',
      dataDir: '/var/lib/skiff-lab/lab/h2',
      runDir: '/run/skiff-lab/lab/h2',
      runcRoot: '/run/skiff-lab/lab/h2/runc',
      controlSocket: '/run/skiff-lab/lab/h2/skiff.sock',
      cgroupParent: '/skiff-lab-lab/h2',
      daemonCgroup: '/skiff-lab-lab/h2-daemon',
      bridgeName: 'skiff0',
      bridgeSubnet: '198.18.130.0/24',
    });
    expect(bridgeAddress(7)).toBe('198.18.7.1');
    expect(labPaths('lab').bridge).toBe('sk-lab');
  });

  it('interface names fit IFNAMSIZ for the longest lab name and the largest host', () => {
    const layout = hostLayout('abcdefgh', MAX_HOSTS, 127);
    expect(layout.veth.length).toBeLessThanOrEqual(MAX_INTERFACE_NAME_LENGTH);
    expect(labPaths('abcdefgh').bridge.length).toBeLessThanOrEqual(MAX_INTERFACE_NAME_LENGTH);
    expect(() => hostLayout('lab', MAX_HOSTS + 1, 0)).toThrow(/index/);
  });

  it('veth patterns of two labs never match each other\'s veths', () => {
    const a = labPaths('a');
    const ah1 = labPaths('ah1');
    expect(a.vethPattern.test(hostLayout('ah1', 1, 1).veth)).toBe(false);
    expect(ah1.vethPattern.test(hostLayout('a', 11, 1).veth)).toBe(false);
    expect(a.vethPattern.test(hostLayout('a', 11, 1).veth)).toBe(true);
  });

  it('hostIndex parses h<N>', () => {
    expect(hostIndex('h12')).toBe(12);
    expect(hostIndex('h0')).toBeUndefined();
    expect(hostIndex('x1')).toBeUndefined();
  });

  it('chooseSubnetIndex gives the default lab 0, others the first free /24 from 1', () => {
    const routes = ['default', '192.0.2.0/24'];
    expect(chooseSubnetIndex('lab', routes, new Set())).toBe(0);
    expect(chooseSubnetIndex('t1', routes, new Set())).toBe(1);
    expect(chooseSubnetIndex('lab', [...routes, '198.18.0.0/24'], new Set())).toBe(1);
    expect(chooseSubnetIndex('t1', routes, new Set([1, 2]))).toBe(3);
    expect(chooseSubnetIndex('t1', ['198.18.1.7', '198.18.2.0/23'], new Set())).toBe(4);
    expect(chooseSubnetIndex('t1', ['198.18.0.0/15'], new Set())).toBeUndefined();
  });

  it('parseCidr reads CIDRs and bare addresses and refuses junk', () => {
    expect(parseCidr('198.18.3.9/24')).toEqual({ network: parseCidr('198.18.3.0')?.network, prefixLength: 24 });
    expect(parseCidr('10.0.0.1')?.prefixLength).toBe(32);
    expect(parseCidr('default')).toBeUndefined();
    expect(parseCidr('300.1.1.1/8')).toBeUndefined();
  });
});
