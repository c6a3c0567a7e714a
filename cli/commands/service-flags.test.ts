import { describe, expect, it } from 'vitest';
import {
  type CreateFlags,
  FlagError,
  parseBytes,
  parseConfigFlag,
  parseConstraintFlag,
  parseCount,
  parseDuration,
  parsePlacementPrefFlag,
  parsePublishFlag,
  parseSecretFlag,
  specFromFlags,
} from './service-flags.js';

const flags = (extra: Partial<CreateFlags> = {}): CreateFlags => ({ name: 'web', replicas: '3', env: [], label: [], ...extra });

describe('service flags', () => {
  it('parseCount accepts non-negative integers and names the flag otherwise', () => {
    expect(parseCount('--replicas', '0')).toBe(0);
    expect(parseCount('--replicas', ' 12 ')).toBe(12);
    for (const bad of ['-1', '1.5', 'three', '', '1e3']) {
      expect(() => parseCount('--replicas', bad)).toThrow(new FlagError(`invalid value "${bad}" for --replicas: must be a non-negative integer`));
    }
    expect(() => parseCount('--replicas', '99999999999999999999')).toThrow(/--replicas: too large/);
  });

  it('parseBytes reads plain bytes and binary units, case-insensitively', () => {
    expect(parseBytes('--limit-memory', '1048576')).toBe(1_048_576);
    expect(parseBytes('--limit-memory', '512m')).toBe(512 * 1024 ** 2);
    expect(parseBytes('--limit-memory', '1G')).toBe(1024 ** 3);
    expect(parseBytes('--limit-memory', '1.5k')).toBe(1536);
    expect(() => parseBytes('--limit-memory', '12q')).toThrow(/invalid value "12q" for --limit-memory/);
  });

  it('parseDuration reads ms, s, m, h and their sums', () => {
    expect(parseDuration('--restart-delay', '250ms')).toBe(250);
    expect(parseDuration('--restart-delay', '5s')).toBe(5_000);
    expect(parseDuration('--restart-delay', '1m30s')).toBe(90_000);
    expect(parseDuration('--restart-delay', '2h')).toBe(7_200_000);
    for (const bad of ['5', '5 s', 's', '5sx', '']) expect(() => parseDuration('--restart-delay', bad)).toThrow(/for --restart-delay: use a duration/);
  });

  it('specFromFlags builds a replicated spec from the image, command and flags', () => {
    const spec = specFromFlags('demo/web:v1', ['httpd', '-f'], flags({ env: ['A=1'], label: ['tier=front', 'x=a=b'], workdir: '/srv', user: '1000:1000', hostname: 'h', entrypoint: '/bin/sh' }));
    expect(spec).toMatchObject({
      name: 'web',
      labels: { tier: 'front', x: 'a=b' },
      mode: { $case: 'replicated', value: { replicas: 3 } },
      taskTemplate: {
        container: { image: 'demo/web:v1', command: ['/bin/sh'], args: ['httpd', '-f'], env: ['A=1'], user: '1000:1000', workdir: '/srv', hostname: 'h' },
        resources: { limits: { nanoCpus: 0, memoryBytes: 0, pids: 0 } },
        restartPolicy: { condition: '', delayMs: 0, maxAttempts: 0, windowMs: 0 },
      },
    });
  });

  it('specFromFlags converts limits and restart policy flags to spec units', () => {
    const spec = specFromFlags('demo/web:v1', [], flags({ limitCpu: '0.5', limitMemory: '256m', limitPids: '64', restartCondition: 'on-failure', restartDelay: '100ms', restartMaxAttempts: '3', restartWindow: '1m' }));
    expect(spec.taskTemplate?.resources?.limits).toEqual({ nanoCpus: 500_000_000, memoryBytes: 256 * 1024 ** 2, pids: 64 });
    expect(spec.taskTemplate?.restartPolicy).toEqual({ condition: 'on-failure', delayMs: 100, maxAttempts: 3, windowMs: 60_000 });
    expect(spec.taskTemplate?.container?.command).toEqual([]);
  });

  it('specFromFlags refuses bad flags with an error naming the flag', () => {
    expect(() => specFromFlags('demo/web:v1', [], { replicas: '1', env: [], label: [] })).toThrow(new FlagError('--name is required'));
    expect(() => specFromFlags('demo/web:v1', [], flags({ replicas: '-2' }))).toThrow(/for --replicas/);
    expect(() => specFromFlags('demo/web:v1', [], flags({ replicas: '2.5' }))).toThrow(/for --replicas/);
    expect(() => specFromFlags('demo/web:v1', [], flags({ label: ['=v'] }))).toThrow(/invalid value "=v" for --label: must be KEY=VALUE/);
    expect(() => specFromFlags('demo/web:v1', [], flags({ limitCpu: '0' }))).toThrow(/for --limit-cpu: must be a positive number/);
    expect(() => specFromFlags('demo/web:v1', [], flags({ limitCpu: 'lots' }))).toThrow(/for --limit-cpu/);
    expect(() => specFromFlags('demo/web:v1', [], flags({ restartDelay: 'soon' }))).toThrow(/for --restart-delay/);
  });

  it('specFromFlags leaves an empty name for the server to refuse', () => {
    expect(specFromFlags('demo/web:v1', [], flags({ name: '' })).name).toBe('');
  });

  it('parseSecretFlag reads NAME or source=NAME with target, uid, gid and an octal mode', () => {
    expect(parseSecretFlag('db')).toEqual({ secretId: '', secretName: 'db', target: '', uid: 0, gid: 0, mode: 0 });
    expect(parseSecretFlag('db,target=password,uid=1000,gid=2000,mode=0400')).toEqual({ secretId: '', secretName: 'db', target: 'password', uid: 1000, gid: 2000, mode: 0o400 });
    expect(parseSecretFlag('source=db,target=x,mode=440')).toMatchObject({ secretName: 'db', target: 'x', mode: 0o440 });
    expect(parseSecretFlag('src=db,mode=0o644')).toMatchObject({ secretName: 'db', mode: 0o644 });
    expect(parseConfigFlag('app.conf,target=/etc/app.conf')).toEqual({ configId: '', configName: 'app.conf', target: '/etc/app.conf', uid: 0, gid: 0, mode: 0 });
  });

  const badReferences: Array<[string, string]> = [
    ['', 'the name is missing'],
    ['target=x', 'the name is missing'],
    ['db,mode=0999', 'mode must be an octal file mode from 1 to 0777'],
    ['db,mode=0', 'mode must be an octal file mode'],
    ['db,mode=rw', 'mode must be an octal file mode'],
    ['db,uid=-1', 'uid must be an integer from 0 to 4294967295'],
    ['db,gid=x', 'gid must be an integer'],
    ['db,owner=me', 'unknown field "owner" (use source, target, uid, gid or mode)'],
    ['db,target=a,target=b', 'target is given twice'],
    ['db,source=other', 'source is given twice'],
    ['db,extra', '"extra" must be KEY=VALUE'],
  ];
  it.each(badReferences)('parseSecretFlag refuses %j, naming the flag', (value, reason) => {
    expect(() => parseSecretFlag(value)).toThrow(FlagError);
    expect(() => parseSecretFlag(value)).toThrow(`invalid value "${value}" for --secret: ${reason}`);
  });

  it('specFromFlags puts --secret and --config references in the container spec, in order', () => {
    const spec = specFromFlags('demo/web:v1', [], flags({ secret: ['db', 'tls,target=tls.pem,mode=0400'], config: ['app,target=/etc/app.conf'] }));
    expect(spec.taskTemplate?.container?.secrets.map((reference) => [reference.secretName, reference.target, reference.mode])).toEqual([['db', '', 0], ['tls', 'tls.pem', 0o400]]);
    expect(spec.taskTemplate?.container?.configs.map((reference) => [reference.configName, reference.target])).toEqual([['app', '/etc/app.conf']]);
    expect(() => specFromFlags('demo/web:v1', [], flags({ config: ['app,mode=9'] }))).toThrow(/invalid value "app,mode=9" for --config: mode must be/);
    expect(specFromFlags('demo/web:v1', [], flags()).taskTemplate?.container?.secrets).toEqual([]);
  });

  it('parseConstraintFlag checks the constraint with the scheduler parser and names the flag', () => {
    expect(parseConstraintFlag('node.labels.zone == a')).toBe('node.labels.zone==a');
    expect(parseConstraintFlag('node.role!=manager')).toBe('node.role!=manager');
    expect(() => parseConstraintFlag('zone=a')).toThrow(new FlagError('invalid value "zone=a" for --constraint: constraint "zone=a" must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE'));
    expect(() => parseConstraintFlag('node.name==a')).toThrow(/for --constraint: constraint "node.name==a": unknown attribute "node.name"/);
  });

  it('parsePlacementPrefFlag reads spread=ATTRIBUTE only', () => {
    expect(parsePlacementPrefFlag('spread=node.labels.zone')).toEqual({ spread: 'node.labels.zone' });
    expect(() => parsePlacementPrefFlag('node.labels.zone')).toThrow(new FlagError('invalid value "node.labels.zone" for --placement-pref: use spread=node.labels.KEY'));
    expect(() => parsePlacementPrefFlag('binpack=node.labels.zone')).toThrow(/use spread=node.labels.KEY/);
    expect(() => parsePlacementPrefFlag('spread=zone')).toThrow(/for --placement-pref: placement preference "zone": unknown attribute/);
  });

  it('parsePublishFlag reads the long form with defaults tcp and ingress, and the short form', () => {
    expect(parsePublishFlag('published=8080,target=80')).toEqual({ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' });
    expect(parsePublishFlag('published=53,target=53,protocol=udp,mode=host')).toEqual({ name: '', protocol: 'udp', targetPort: 53, publishedPort: 53, publishMode: 'host' });
    expect(parsePublishFlag('target=80,mode=host')).toMatchObject({ targetPort: 80, publishedPort: 0, publishMode: 'host' });
    expect(parsePublishFlag('8080:80')).toEqual({ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' });
    expect(parsePublishFlag('5353:53/udp')).toMatchObject({ protocol: 'udp', targetPort: 53, publishedPort: 5353 });
  });

  const badPublish: Array<[string, string]> = [
    ['published=8080', 'target must be a port from 1 to 65535'],
    ['published=70000,target=80', 'published must be a port from 1 to 65535'],
    ['published=8080,target=80,protocol=sctp', 'protocol must be tcp or udp'],
    ['published=8080,target=80,mode=bridge', 'mode must be ingress or host'],
    ['published=8080,target=80,target=81', 'target is given twice'],
    ['published=8080,target=80,node=a', 'unknown field "node" (use published, target, protocol or mode)'],
    ['8080', '"8080" must be KEY=VALUE (or use the short form PUBLISHED:TARGET[/PROTOCOL])'],
    ['0:80', 'published must be a port from 1 to 65535'],
  ];
  it.each(badPublish)('parsePublishFlag refuses %j, naming the flag', (value, reason) => {
    expect(() => parsePublishFlag(value)).toThrow(new FlagError(`invalid value "${value}" for --publish: ${reason}`));
  });

  it('specFromFlags puts placement, reservations and published ports in the spec', () => {
    const spec = specFromFlags(
      'demo/web:v1',
      [],
      flags({
        constraint: ['node.labels.zone==a', 'node.role!=manager'],
        placementPref: ['spread=node.labels.zone', 'spread=node.labels.rack'],
        reserveCpu: '0.25',
        reserveMemory: '128m',
        maxReplicasPerNode: '2',
        publish: ['published=8080,target=80,mode=host', '9000:90'],
      }),
    );
    expect(spec.taskTemplate?.placement).toEqual({
      constraints: ['node.labels.zone==a', 'node.role!=manager'],
      preferences: [{ spread: 'node.labels.zone' }, { spread: 'node.labels.rack' }],
      maxReplicasPerNode: 2,
    });
    expect(spec.taskTemplate?.resources?.reservations).toEqual({ nanoCpus: 250_000_000, memoryBytes: 128 * 1024 ** 2, pids: 0 });
    expect(spec.endpoint?.ports.map((port) => [port.publishedPort, port.targetPort, port.publishMode])).toEqual([[8080, 80, 'host'], [9000, 90, 'ingress']]);
  });

  it('specFromFlags leaves placement, reservations and endpoint unset without their flags', () => {
    const spec = specFromFlags('demo/web:v1', [], flags());
    expect(spec.taskTemplate?.placement).toBeUndefined();
    expect(spec.taskTemplate?.resources?.reservations).toBeUndefined();
    expect(spec.endpoint).toBeUndefined();
    expect(() => specFromFlags('demo/web:v1', [], flags({ reserveCpu: '-1' }))).toThrow(/for --reserve-cpu: must be a positive number/);
    expect(() => specFromFlags('demo/web:v1', [], flags({ reserveMemory: 'lots' }))).toThrow(/for --reserve-memory/);
    expect(() => specFromFlags('demo/web:v1', [], flags({ maxReplicasPerNode: 'two' }))).toThrow(/for --max-replicas-per-node/);
  });

  it('specFromFlags takes --endpoint-mode vip or dnsrr and refuses anything else', () => {
    expect(specFromFlags('demo/web:v1', [], flags({ endpointMode: 'dnsrr' })).endpoint).toEqual({ mode: 'dnsrr', ports: [] });
    expect(specFromFlags('demo/web:v1', [], flags({ endpointMode: 'VIP', publish: ['80:80'] })).endpoint?.mode).toBe('vip');
    expect(() => specFromFlags('demo/web:v1', [], flags({ endpointMode: 'rr' }))).toThrow('invalid value "rr" for --endpoint-mode: use vip or dnsrr');
  });
});

describe('--network', () => {
  it('--network is repeatable, kept in order, and takes aliases in the long syntax', () => {
    expect(specFromFlags('demo/web:v1', [], flags({ network: ['front', 'back'] })).taskTemplate).toMatchObject({ networks: ['front', 'back'], networkAliases: [] });
    expect(specFromFlags('demo/web:v1', [], flags()).taskTemplate).toMatchObject({ networks: [], networkAliases: [] });
    expect(specFromFlags('demo/web:v1', [], flags({ network: ['name=front,alias=shop,alias=www', 'back'] })).taskTemplate).toMatchObject({
      networks: ['front', 'back'],
      networkAliases: [{ network: 'front', aliases: ['shop', 'www'] }],
    });
    expect(() => specFromFlags('demo/web:v1', [], flags({ network: ['front', 'name=front,alias=x'] }))).toThrow('invalid value "front" for --network: given twice');
    expect(() => specFromFlags('demo/web:v1', [], flags({ network: ['name=front,ip=10.0.0.9'] }))).toThrow('unknown field "ip"');
  });
});
