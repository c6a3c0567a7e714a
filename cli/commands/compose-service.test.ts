import { describe, expect, it } from 'vitest';
import { composeServiceSpec, webService } from './testing/compose-plan.js';

const web = (lines: string, environment: Record<string, string> = {}) => composeServiceSpec(webService(lines), 'web', environment);
const container = (lines: string, environment: Record<string, string> = {}) => web(lines, environment).taskTemplate!.container!;

describe('compose service', () => {
  it('compose service is named STACK_KEY and carries the stack label on the service and its containers, and the image label', () => {
    const spec = web('    labels: {team: shop}\n    deploy: {labels: {tier: front}}\n');
    expect(spec.name).toBe('shop_web');
    expect(spec.labels).toEqual({ tier: 'front', 'com.docker.stack.namespace': 'shop', 'com.docker.stack.image': 'demo/web:v1' });
    expect(spec.taskTemplate?.container?.labels).toEqual({ team: 'shop', 'com.docker.stack.namespace': 'shop' });
    expect(container('    labels: ["a=1", "b"]\n').labels).toEqual({ a: '1', b: '', 'com.docker.stack.namespace': 'shop' });
  });

  it('compose service maps entrypoint to the command and command to the arguments, split as a shell would', () => {
    expect(container('    entrypoint: ["/bin/sh", "-c"]\n    command: echo "hello world" \'a b\'\n')).toMatchObject({ command: ['/bin/sh', '-c'], args: ['echo', 'hello world', 'a b'] });
    expect(container('    command: [sleep, 1000]\n')).toMatchObject({ command: [], args: ['sleep', '1000'] });
  });

  it('compose service takes environment as a list or a map, sorted, a bare key from the environment or left out', () => {
    expect(container('    environment: [B=2, A=1, FROM_SHELL, MISSING]\n', { FROM_SHELL: 'yes' }).env).toEqual(['A=1', 'B=2', 'FROM_SHELL=yes']);
    expect(container('    environment: {DEBUG: true, PORT: 80, EMPTY: "", UNSET: null}\n').env).toEqual(['DEBUG=true', 'EMPTY=', 'PORT=80']);
  });

  it('compose service takes user, working_dir, hostname, read_only, init, stop_signal and stop_grace_period', () => {
    expect(container('    user: 1000\n    working_dir: /app\n    hostname: web1\n    read_only: true\n    init: "true"\n    stop_signal: SIGINT\n    stop_grace_period: 1m30s\n')).toMatchObject({
      user: '1000', workdir: '/app', hostname: 'web1', readOnly: true, init: true, stopSignal: 'SIGINT', stopGracePeriodMs: 90_000,
    });
  });

  it('compose service takes capabilities, sysctls and ulimits through the flag parsers', () => {
    expect(container('    cap_add: [NET_ADMIN]\n    cap_drop: [all]\n    sysctls: {net.core.somaxconn: 1024}\n    ulimits: {nproc: 512, nofile: {soft: 1024, hard: 2048}}\n')).toMatchObject({
      capAdd: ['NET_ADMIN'],
      capDrop: ['ALL'],
      sysctls: { 'net.core.somaxconn': '1024' },
      ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }, { name: 'nproc', soft: 512, hard: 512 }],
    });
    expect(container('    sysctls: ["net.ipv4.ip_forward=1"]\n').sysctls).toEqual({ 'net.ipv4.ip_forward': '1' });
  });

  it('compose service health checks: a string is CMD-SHELL, a list keeps its form, disable is NONE', () => {
    expect(container('    healthcheck: {test: curl -f http://localhost/, interval: 10s, timeout: 2s, retries: 5, start_period: 30s}\n').healthcheck).toEqual({
      test: ['CMD-SHELL', 'curl -f http://localhost/'], intervalMs: 10_000, timeoutMs: 2_000, retries: 5, startPeriodMs: 30_000, http: undefined, tcpPort: 0,
    });
    expect(container('    healthcheck: {test: [CMD, wget, -q, localhost]}\n').healthcheck?.test).toEqual(['CMD', 'wget', '-q', 'localhost']);
    expect(container('    healthcheck: {disable: true}\n').healthcheck?.test).toEqual(['NONE']);
    expect(container('    healthcheck: {interval: 5s}\n').healthcheck).toMatchObject({ test: [], intervalMs: 5_000 });
    expect(container('').healthcheck).toBeUndefined();
  });

  it('compose service publishes ports in the short and the long syntax', () => {
    const ports = web('    ports: ["8080:80", "80", 9000, "53:53/udp", {target: 443, published: 8443, protocol: tcp, mode: host}]\n').endpoint?.ports;
    expect(ports).toEqual([
      { name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' },
      { name: '', protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'ingress' },
      { name: '', protocol: 'tcp', targetPort: 9000, publishedPort: 0, publishMode: 'ingress' },
      { name: '', protocol: 'udp', targetPort: 53, publishedPort: 53, publishMode: 'ingress' },
      { name: '', protocol: 'tcp', targetPort: 443, publishedPort: 8443, publishMode: 'host' },
    ]);
    expect(web('').endpoint).toBeUndefined();
  });

  it('compose service joins the default network without networks:, with its key as alias', () => {
    expect(web('').taskTemplate).toMatchObject({ networks: ['shop_default'], networkAliases: [{ network: 'shop_default', aliases: ['web'] }] });
  });

  it('compose service joins listed networks sorted by name, with its own aliases before its key', () => {
    const text = `${webService('    networks:\n      front: {aliases: [www]}\n      back:\n')}networks:\n  front: {}\n  back: {name: shared-back}\n`;
    expect(composeServiceSpec(text, 'web').taskTemplate).toMatchObject({
      networks: ['shared-back', 'shop_front'],
      networkAliases: [{ network: 'shared-back', aliases: ['web'] }, { network: 'shop_front', aliases: ['www', 'web'] }],
    });
    const listed = composeServiceSpec(`${webService('    networks: [front]\n')}networks: {front: {external: true}}\n`, 'web');
    expect(listed.taskTemplate?.networks).toEqual(['front']);
  });

  it('compose service references secrets and configs in the short and the long syntax, sorted by name', () => {
    const text = `${webService(
      '    secrets: [token, {source: cert, target: tls.pem, uid: "100", gid: 101, mode: 0400}]\n    configs: [conf, {source: site, target: etc/site.conf, mode: 0o444}]\n',
    )}secrets:\n  token: {file: ./token.txt}\n  cert: {external: true, name: shared-cert}\nconfigs:\n  conf: {file: conf.ini}\n  site: {file: /etc/site.conf, name: site-v2}\n`;
    const spec = composeServiceSpec(text, 'web').taskTemplate!.container!;
    expect(spec.secrets).toEqual([
      { secretId: '', secretName: 'shared-cert', target: 'tls.pem', uid: 100, gid: 101, mode: 0o400 },
      { secretId: '', secretName: 'shop_token', target: 'token', uid: 0, gid: 0, mode: 0 },
    ]);
    expect(spec.configs).toEqual([
      { configId: '', configName: 'shop_conf', target: '/conf', uid: 0, gid: 0, mode: 0 },
      { configId: '', configName: 'site-v2', target: '/etc/site.conf', uid: 0, gid: 0, mode: 0o444 },
    ]);
  });

  it('compose service mounts named volumes, binds resolved against the file, and tmpfs', () => {
    const text = `${webService(
      '    volumes:\n      - data:/data:ro\n      - ./site:/usr/share/site\n      - ~/cache:/cache:rw\n      - /scratch\n      - {type: tmpfs, target: /tmp, tmpfs: {size: 64m, mode: 01777}}\n      - {type: bind, source: ../logs, target: /logs, read_only: true}\n      - {type: volume, source: data, target: /backup}\n',
    )}volumes:\n  data: {}\n`;
    expect(composeServiceSpec(text, 'web').taskTemplate?.container?.mounts).toEqual([
      { type: 'volume', source: 'shop_data', target: '/data', readOnly: true, tmpfsSizeBytes: 0, tmpfsMode: 0 },
      { type: 'bind', source: '/srv/shop/site', target: '/usr/share/site', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
      { type: 'bind', source: '/home/ann/cache', target: '/cache', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
      { type: 'volume', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
      { type: 'tmpfs', source: '', target: '/tmp', readOnly: false, tmpfsSizeBytes: 64 * 1024 ** 2, tmpfsMode: 0o1777 },
      { type: 'bind', source: '/srv/logs', target: '/logs', readOnly: true, tmpfsSizeBytes: 0, tmpfsMode: 0 },
      { type: 'volume', source: 'shop_data', target: '/backup', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
    ]);
    const named = composeServiceSpec(`${webService('    volumes: ["db:/var/lib/db"]\n')}volumes:\n  db: {external: true}\n`, 'web');
    expect(named.taskTemplate?.container?.mounts[0]?.source).toBe('db');
  });
});
