import { describe, expect, it } from 'vitest';
import { hostLayout } from './naming.js';
import { parseLabState, type LabState } from './state.js';

function sampleState(): LabState {
  const layout = hostLayout('lab', 1, 0);
  return {
    version: 1,
    name: 'lab',
    subnetIndex: 0,
    bridge: 'sk-lab',
    bridgeAddr: '198.18.0.1',
    registry: { addr: '198.18.0.1:5000', pid: 10, dataDir: '/var/lib/skiff-lab/lab/registry' },
    hosts: [
      {
        name: layout.name,
        index: 1,
        role: 'manager',
        addr: layout.addr,
        nodeId: 'abc',
        pid: 0,
        dataDir: layout.dataDir,
        runDir: layout.runDir,
        runcRoot: layout.runcRoot,
        controlSocket: layout.controlSocket,
        cgroupParent: layout.cgroupParent,
        daemonCgroup: layout.daemonCgroup,
        netns: layout.netns,
        veth: layout.veth,
        bridgeName: layout.bridgeName,
        bridgeSubnet: layout.bridgeSubnet,
      },
    ],
    contextName: 'lab',
  };
}

describe('lab state', () => {
  it('parseLabState round-trips what writeLabState writes', () => {
    const state = sampleState();
    expect(parseLabState(JSON.stringify(state), 'lab.json')).toEqual(state);
  });

  it('parseLabState names the file and the field at fault', () => {
    const state = sampleState();
    expect(() => parseLabState('{', 'x/lab.json')).toThrow('cannot read x/lab.json: not JSON');
    expect(() => parseLabState(JSON.stringify({ ...state, version: 2 }), 'lab.json')).toThrow('field "version"');
    const badRole = { ...state, hosts: [{ ...state.hosts[0], role: 'boss' }] };
    expect(() => parseLabState(JSON.stringify(badRole), 'lab.json')).toThrow('field "hosts[0].role"');
    const badPid = { ...state, registry: { ...state.registry, pid: -1 } };
    expect(() => parseLabState(JSON.stringify(badPid), 'lab.json')).toThrow('field "registry.pid"');
    expect(() => parseLabState(JSON.stringify({ ...state, name: 'Bad!' }), 'lab.json')).toThrow(/lab name/);
  });
});
