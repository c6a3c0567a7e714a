import { describe, expect, it } from 'vitest';
import type { PortConfig, ServiceSpec, TaskSpec } from '../../proto/skiff/v1/specs.js';
import { ApiError } from './errors.js';
import { fakeServiceSpec } from './testing/fake-cluster.js';
import { MAX_ALIASES_PER_NETWORK, MAX_CONSTRAINTS, MAX_PREFERENCES, validateServiceSpec } from './validate-service.js';

function refusal(spec: ServiceSpec): string {
  try {
    validateServiceSpec(spec);
  } catch (error) {
    if (error instanceof ApiError) return `${error.code}: ${error.message}`;
    throw error;
  }
  return 'accepted';
}

function withTemplate(template: Partial<TaskSpec>): ServiceSpec {
  const spec = fakeServiceSpec('web', 1);
  return { ...spec, taskTemplate: { ...spec.taskTemplate!, ...template } };
}

const placement = (constraints: string[], spreads: string[] = [], maxReplicasPerNode = 0) =>
  withTemplate({ placement: { constraints, preferences: spreads.map((spread) => ({ spread })), maxReplicasPerNode } });

const port = (overrides: Partial<PortConfig>): PortConfig => ({ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', ...overrides });
const ports = (...list: PortConfig[]): ServiceSpec => ({ ...fakeServiceSpec('web', 1), endpoint: { mode: '', ports: list } });

describe('validate service', () => {
  it('validate service takes names as Swarm does: a stack service name with an underscore, not a leading one or a dot', () => {
    expect(refusal(fakeServiceSpec('shop_web', 1))).toBe('accepted');
    for (const name of ['_web', 'web_', 'shop.web', 'a'.repeat(64)]) expect(refusal(fakeServiceSpec(name, 1))).toContain(`name "${name}" must be 1-63 letters, digits, '-' or '_'`);
  });

  it('validate service accepts a spec with placement, reservations, host ports and the binpack label', () => {
    const spec = placement(['node.labels.zone==a', 'node.role != manager'], ['node.labels.zone', 'node.labels.rack'], 2);
    spec.taskTemplate!.resources = { limits: undefined, reservations: { nanoCpus: 5e8, memoryBytes: 1024, pids: 0 } };
    spec.endpoint = { mode: '', ports: [port({ publishMode: 'host' }), port({ protocol: 'udp' }), port({ publishedPort: 0, targetPort: 81 })] };
    spec.labels = { 'skiff.placement': 'binpack' };
    expect(refusal(spec)).toBe('accepted');
  });

  it('validate service names the malformed constraint by its index', () => {
    expect(refusal(placement(['node.role==worker', 'node.labels.zone=a']))).toBe(
      'invalid_argument: cannot accept service spec: taskTemplate.placement.constraints[1]: constraint "node.labels.zone=a" must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE',
    );
    expect(refusal(placement(['node.zone==a']))).toMatch(/taskTemplate\.placement\.constraints\[0\]: constraint "node\.zone==a": unknown attribute "node\.zone"/);
    expect(refusal(placement(Array.from({ length: MAX_CONSTRAINTS + 1 }, () => 'node.role==worker')))).toMatch(/constraints: 65 entries, more than 64/);
  });

  it('validate service names the bad placement preference and max replicas', () => {
    expect(refusal(placement([], ['node.labels.zone', 'zone']))).toBe(
      'invalid_argument: cannot accept service spec: taskTemplate.placement.preferences[1].spread: placement preference "zone": unknown attribute "zone": use node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.KEY',
    );
    expect(refusal(placement([], Array.from({ length: MAX_PREFERENCES + 1 }, () => 'node.labels.zone')))).toMatch(/preferences: 9 entries, more than 8/);
    expect(refusal(placement([], [], -1))).toMatch(/taskTemplate\.placement\.maxReplicasPerNode: must be a non-negative integer/);
  });

  it('validate service refuses negative or fractional reservations', () => {
    const spec = withTemplate({ resources: { limits: undefined, reservations: { nanoCpus: 0, memoryBytes: -1, pids: 0 } } });
    expect(refusal(spec)).toBe('invalid_argument: cannot accept service spec: taskTemplate.resources.reservations.memoryBytes: must be a non-negative integer');
    const fractional = withTemplate({ resources: { limits: undefined, reservations: { nanoCpus: 0.5, memoryBytes: 0, pids: 0 } } });
    expect(refusal(fractional)).toMatch(/reservations\.nanoCpus: must be a non-negative integer/);
  });

  it('validate service checks each published port and refuses one port and protocol twice', () => {
    expect(refusal(ports(port({ protocol: 'sctp' })))).toBe('invalid_argument: cannot accept service spec: endpoint.ports[0].protocol: "sctp" must be tcp or udp');
    expect(refusal(ports(port({ publishMode: 'bridge' })))).toMatch(/endpoint\.ports\[0\]\.publishMode: "bridge" must be ingress or host/);
    expect(refusal(ports(port({ targetPort: 0 })))).toMatch(/endpoint\.ports\[0\]\.targetPort: must be a port from 1 to 65535/);
    expect(refusal(ports(port({ publishedPort: 70_000 })))).toMatch(/endpoint\.ports\[0\]\.publishedPort: must be a port from 1 to 65535, or 0 for none/);
    expect(refusal(ports(port({}), port({ protocol: '', targetPort: 81, publishMode: 'host' })))).toBe(
      'invalid_argument: cannot accept service spec: endpoint.ports[1].publishedPort: 8080/tcp is already published by endpoint.ports[0]',
    );
  });

  it('validate service accepts endpoint mode vip or dnsrr, and dnsrr only with host-mode ports', () => {
    const withMode = (mode: string, list: PortConfig[] = []): ServiceSpec => ({ ...fakeServiceSpec('web', 1), endpoint: { mode, ports: list } });
    expect(refusal(withMode('rr'))).toBe('invalid_argument: cannot accept service spec: endpoint.mode: "rr" must be vip or dnsrr');
    expect(refusal(withMode('dnsrr', [port({})]))).toMatch(/endpoint\.mode: dnsrr has no virtual IP for the routing mesh: publish its ports with mode=host/);
    expect(refusal(withMode('dnsrr', [port({ publishMode: 'host' })]))).toBe('accepted');
    expect(refusal(withMode('vip'))).toBe('accepted');
  });

  it('validate service accepts only spread or binpack as the placement label', () => {
    const spec = { ...fakeServiceSpec('web', 1), labels: { 'skiff.placement': 'pack' } };
    expect(refusal(spec)).toBe('invalid_argument: cannot accept service spec: labels["skiff.placement"]: "pack" must be spread or binpack');
  });

  const aliases = (...entries: Array<[string, string[]]>): ServiceSpec => withTemplate({ networks: ['front', 'back'], networkAliases: entries.map(([network, names]) => ({ network, aliases: names })) });

  it('validate service accepts network aliases that are DNS names', () => {
    const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(longest).toHaveLength(253);
    expect(refusal(aliases(['front', ['web', 'Shop-1', 'api.internal', '9lives', 'my_db', longest]], ['back', ['web']]))).toBe('accepted');
    expect(refusal(aliases(['front', Array.from({ length: MAX_ALIASES_PER_NETWORK }, (_, index) => `a${index}`)]))).toBe('accepted');
  });

  const badAliases: Array<[string, ServiceSpec, string]> = [
    ['a leading hyphen', aliases(['front', ['web', '-web']]), 'taskTemplate.networkAliases[0].aliases[1]: "-web" is not a DNS name'],
    ['a trailing hyphen in a label', aliases(['front', ['web-.shop']]), 'taskTemplate.networkAliases[0].aliases[0]: "web-.shop" is not a DNS name'],
    ['an underscore at the end of a label', aliases(['back', ['my_web', 'web_.shop']]), 'taskTemplate.networkAliases[0].aliases[1]: "web_.shop" is not a DNS name'],
    ['an empty label', aliases(['front', ['web..shop']]), '"web..shop" is not a DNS name'],
    ['a trailing dot', aliases(['front', ['web.']]), '"web." is not a DNS name'],
    ['an empty alias', aliases(['front', ['']]), 'taskTemplate.networkAliases[0].aliases[0]: "" is not a DNS name'],
    ['a label of 64', aliases(['front', ['a'.repeat(64)]]), `"${'a'.repeat(64)}" is not a DNS name`],
    ['a name of 254', aliases(['front', [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`]]), 'is longer than 253 characters'],
    ['an alias twice, in other case', aliases(['front', ['web', 'api', 'WEB']]), 'taskTemplate.networkAliases[0].aliases[2]: "WEB" is already aliases[0] (DNS names are case-insensitive)'],
    ['more than 32 aliases', aliases(['front', Array.from({ length: MAX_ALIASES_PER_NETWORK + 1 }, (_, index) => `a${index}`)]), 'taskTemplate.networkAliases[0].aliases: 33 entries, more than 32'],
    ['an entry without a network', aliases(['front', ['web']], ['', ['api']]), "taskTemplate.networkAliases[1].network: must name one of the service's networks"],
    ['more entries than networks a service may join', aliases(...Array.from({ length: 17 }, (_, index): [string, string[]] => [`n${index}`, ['web']])), 'taskTemplate.networkAliases: 17 entries, more than the 16 networks'],
  ];
  it.each(badAliases)('validate service refuses network aliases with %s, naming the field and the value', (_case, spec, message) => {
    const result = refusal(spec);
    expect(result).toMatch(/^invalid_argument: cannot accept service spec: taskTemplate\.networkAliases/);
    expect(result).toContain(message);
  });
});
