import { describe, expect, it } from 'vitest';
import { ComposeError } from './compose-values.js';
import { composePlan, webService } from './testing/compose-plan.js';

/** [the message the refusal starts with (the path first), the Compose file]. */
const SERVICE_REFUSALS: Array<[string, string]> = [
  ['services.web.build: not supported by skiff stack deploy', '    build: .\n'],
  ['services.web.restart: not supported by skiff stack deploy', '    restart: always\n'],
  ['services.web.command: must be a string or a list of strings', '    command: {a: 1}\n'],
  ['invalid value "sh -c \'x" for services.web.entrypoint: unterminated \'', "    entrypoint: sh -c 'x\n"],
  ['services.web.environment: must be a list of KEY=VALUE or a mapping', '    environment: 5\n'],
  ['services.web.environment[0]: "=x" must be KEY=VALUE', '    environment: ["=x"]\n'],
  ['services.web.environment.A: must be a string', '    environment: {A: [1]}\n'],
  ['services.web.labels: must be a list of KEY=VALUE or a mapping', '    labels: true\n'],
  ['services.web.user: must be a string', '    user: [root]\n'],
  ['services.web.read_only: must be true or false', '    read_only: maybe\n'],
  ['services.web.init: must be true or false', '    init: 1\n'],
  ['invalid value "NET_FOO" for services.web.cap_add[0]', '    cap_add: [NET_FOO]\n'],
  ['services.web.cap_drop: must be a list', '    cap_drop: NET_RAW\n'],
  ['invalid value "vm.swappiness=1" for services.web.sysctls', '    sysctls: {vm.swappiness: 1}\n'],
  ['services.web.ulimits.nofile.hard: is required', '    ulimits: {nofile: {soft: 10}}\n'],
  ['services.web.ulimits.nofile.max: not supported by skiff stack deploy', '    ulimits: {nofile: {soft: 10, hard: 10, max: 1}}\n'],
  ['invalid value "nofile=20:10" for services.web.ulimits', '    ulimits: {nofile: {soft: 20, hard: 10}}\n'],
  ['invalid value "SIGFOO" for services.web.stop_signal', '    stop_signal: SIGFOO\n'],
  ['invalid value "10" for services.web.stop_grace_period', '    stop_grace_period: 10\n'],
  ['services.web.healthcheck.test: cannot be used with disable: true', '    healthcheck: {disable: true, test: [CMD, x]}\n'],
  ['services.web.healthcheck.test: a list must start with CMD, CMD-SHELL or NONE', '    healthcheck: {test: [curl, x]}\n'],
  ['services.web.healthcheck.start_interval: not supported by skiff stack deploy', '    healthcheck: {start_interval: 1s}\n'],
  ['services.web.healthcheck.retries: must be a non-negative integer', '    healthcheck: {retries: many}\n'],
  ['services.web.ports: must be a list', '    ports: "80:80"\n'],
  ['services.web.ports[0]: "127.0.0.1:80:80" must be TARGET, PUBLISHED:TARGET or PUBLISHED:TARGET/PROTOCOL', '    ports: ["127.0.0.1:80:80"]\n'],
  ['services.web.ports[0]: "8000-8001:80-81" must be', '    ports: ["8000-8001:80-81"]\n'],
  ['services.web.ports[0].target: is required', '    ports: [{published: 80}]\n'],
  ['services.web.ports[0].host_ip: not supported by skiff stack deploy', '    ports: [{target: 80, host_ip: 127.0.0.1}]\n'],
  ['invalid value "target=70000" for services.web.ports[0]: target must be a port from 1 to 65535', '    ports: [70000]\n'],
  ['invalid value "target=80,protocol=sctp" for services.web.ports[0]: protocol must be tcp or udp', '    ports: [{target: 80, protocol: sctp}]\n'],
  ['services.web.networks[0]: network "nope" is not defined under the top-level networks', '    networks: [nope]\n'],
  ['services.web.networks.nope: network "nope" is not defined under the top-level networks', '    networks: {nope: {}}\n'],
  ['services.web.networks.default.ipv4_address: not supported by skiff stack deploy', '    networks: {default: {ipv4_address: 10.0.0.9}}\n'],
  ['services.web.secrets[0]: secret "nope" is not defined under the top-level secrets', '    secrets: [nope]\n'],
  ['services.web.configs[0].source: is required', '    configs: [{target: /x}]\n'],
  ['services.web.volumes[0]: volume "data" is not defined under the top-level volumes', '    volumes: ["data:/data"]\n'],
  ['services.web.volumes[0]: mode "z" is not supported (use ro or rw)', '    volumes: ["./x:/x:z"]\n'],
  ['services.web.volumes[0]: "a:b:c:d" must be [SOURCE:]TARGET[:MODE]', '    volumes: ["a:b:c:d"]\n'],
  ['services.web.volumes[0]: "/srv/shop/a,b" must not contain ","', '    volumes: ["./a,b:/x"]\n'],
  ['services.web.volumes[0].bind: not supported by skiff stack deploy', '    volumes: [{type: bind, source: ./x, target: /x, bind: {propagation: shared}}]\n'],
  ['invalid value "type=npipe,target=/x" for services.web.volumes[0]: type "npipe" must be bind, volume or tmpfs', '    volumes: [{type: npipe, target: /x}]\n'],
  ['for services.web.volumes[0]: a tmpfs mount takes no source', '    volumes: [{type: tmpfs, source: x, target: /x}]\n'],
  ['services.web.deploy.replicas: must be a non-negative integer', '    deploy: {replicas: -1}\n'],
  ['services.web.deploy.replicas: must be a non-negative integer', '    deploy: {replicas: two}\n'],
  ['services.web.deploy.mode: "replicated-job" must be replicated or global', '    deploy: {mode: replicated-job}\n'],
  ['services.web.deploy.replicas: cannot be used with mode: global', '    deploy: {mode: global, replicas: 2}\n'],
  ['services.web.deploy.endpoint_mode: "ipvs" must be vip or dnsrr', '    deploy: {endpoint_mode: ipvs}\n'],
  ['services.web.deploy.labels: must be a list of KEY=VALUE or a mapping', '    deploy: {labels: x}\n'],
  ['services.web.deploy.placement.preferences[0].spread: is required', '    deploy: {placement: {preferences: [{}]}}\n'],
  ['invalid value "node.zone=a" for services.web.deploy.placement.constraints[0]', '    deploy: {placement: {constraints: [node.zone=a]}}\n'],
  ['services.web.deploy.placement.max_replicas_per_node: must be a non-negative integer', '    deploy: {placement: {max_replicas_per_node: 1.5}}\n'],
  ['services.web.deploy.resources.reservations.devices: not supported by skiff stack deploy', '    deploy: {resources: {reservations: {devices: []}}}\n'],
  ['services.web.deploy.resources.reservations.pids: not supported by skiff stack deploy', '    deploy: {resources: {reservations: {pids: 5}}}\n'],
  ['invalid value "0" for services.web.deploy.resources.limits.cpus: must be a positive number', '    deploy: {resources: {limits: {cpus: 0}}}\n'],
  ['services.web.deploy.resources.limits.memory: must be a number or a string', '    deploy: {resources: {limits: {memory: [1]}}}\n'],
  ['invalid value "lots" for services.web.deploy.resources.limits.memory', '    deploy: {resources: {limits: {memory: lots}}}\n'],
  ['invalid value "always" for services.web.deploy.restart_policy.condition', '    deploy: {restart_policy: {condition: always}}\n'],
  ['invalid value "soon" for services.web.deploy.restart_policy.delay', '    deploy: {restart_policy: {delay: soon}}\n'],
  ['invalid value "explode" for services.web.deploy.update_config.failure_action', '    deploy: {update_config: {failure_action: explode}}\n'],
  ['invalid value "rollback" for services.web.deploy.rollback_config.failure_action', '    deploy: {rollback_config: {failure_action: rollback}}\n'],
  ['invalid value "2" for services.web.deploy.update_config.max_failure_ratio', '    deploy: {update_config: {max_failure_ratio: 2}}\n'],
  ['services.web.deploy.rollback_config.monitor_x: not supported by skiff stack deploy', '    deploy: {rollback_config: {monitor_x: 1s}}\n'],
];

const FILE_REFUSALS: Array<[string, string]> = [
  ['include: not supported by skiff stack deploy', 'include: [other.yml]\nservices: {web: {image: x}}\n'],
  ['services: must be a mapping', 'services: [web]\n'],
  ['services: at least one service is required', 'services: {}\n'],
  ['services.web.image: is required (skiff stack deploy does not build images)', 'services: {web: {command: [x]}}\n'],
  ['services.web.image: must not be empty', 'services: {web: {image: ""}}\n'],
  ['services.we.b: the service name "shop_we.b" must be', 'services: {we.b: {image: x}}\n'],
  ['file1.yml: a Compose file must be a mapping', '- services\n'],
  ['file1.yml: Map keys must be unique at line 2', 'services: {}\nservices: {}\n'],
  ['networks.front.driver: "bridge" is not supported', `${webService('')}networks: {front: {driver: bridge}}\n`],
  ['networks.front.driver: cannot be used with external: true', `${webService('')}networks: {front: {external: true, driver: overlay}}\n`],
  ['networks.front.external: must be true or false', `${webService('')}networks: {front: {external: {name: x}}}\n`],
  ['networks.front.driver_opts: not supported by skiff stack deploy', `${webService('')}networks: {front: {driver_opts: {a: b}}}\n`],
  ['networks.front.ipam.config: may hold one subnet only', `${webService('')}networks: {front: {ipam: {config: [{subnet: 10.1.0.0/24}, {subnet: 10.2.0.0/24}]}}}\n`],
  ['networks.front.ipam.config[0].gateway: not supported by skiff stack deploy', `${webService('')}networks: {front: {ipam: {config: [{gateway: 10.1.0.1}]}}}\n`],
  ['networks.front.ipam.driver: only the default IPAM driver is supported', `${webService('')}networks: {front: {ipam: {driver: dhcp}}}\n`],
  ['networks.front: the network name "-front" must be', `${webService('')}networks: {front: {name: -front}}\n`],
  ['secrets.token.file: is required (or external: true)', `${webService('')}secrets: {token: {}}\n`],
  ['secrets.token.file: cannot be used with external: true', `${webService('')}secrets: {token: {external: true, file: x}}\n`],
  ['secrets.token.environment: not supported by skiff stack deploy', `${webService('')}secrets: {token: {environment: TOKEN}}\n`],
  ['configs.conf.content: not supported by skiff stack deploy', `${webService('')}configs: {conf: {content: x}}\n`],
  ['configs.conf: the config name "a/b" must start with a letter or digit', `${webService('')}configs: {conf: {name: a/b, file: x}}\n`],
  ['volumes.data.driver: only the local driver is supported', `${webService('')}volumes: {data: {driver: nfs}}\n`],
  ['volumes.data.driver_opts: not supported by skiff stack deploy', `${webService('')}volumes: {data: {driver_opts: {type: nfs}}}\n`],
  ['services.web.image: invalid interpolation format in "demo/$"', 'services: {web: {image: demo/$}}\n'],
  ['services.web.image: invalid interpolation format in "demo/${TAG"', 'services: {web: {image: "demo/${TAG"}}\n'],
  ['services.web.image: invalid interpolation format in "${1X}"', 'services: {web: {image: "${1X}"}}\n'],
  ['file1.yml: services.web.image: required variable TAG is missing a value: set TAG first', 'services: {web: {image: "demo:${TAG:?set TAG first}"}}\n'],
];

describe('compose refusals', () => {
  it.each(SERVICE_REFUSALS)('compose refusals name the key: %s', (message, lines) => {
    expect(() => composePlan(webService(lines))).toThrow(ComposeError);
    expect(() => composePlan(webService(lines))).toThrow(message);
  });

  it.each(FILE_REFUSALS)('compose refusals name the key: %s', (message, text) => {
    expect(() => composePlan(text)).toThrow(ComposeError);
    expect(() => composePlan(text)).toThrow(message);
  });

  it('compose refusals put the path first for type errors', () => {
    expect(() => composePlan(webService('    deploy: {replicas: -1}\n'))).toThrow(/^services\.web\.deploy\.replicas: must be a non-negative integer$/);
  });
});
