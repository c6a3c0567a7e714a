import { describe, expect, it } from 'vitest';
import { stackNameProblem } from './compose.js';
import { composePlan, webService } from './testing/compose-plan.js';

const LABEL = { 'com.docker.stack.namespace': 'shop' };

describe('compose stack plan', () => {
  it('compose stack plan creates the networks its services use, named STACK_KEY unless named, external ones apart', () => {
    const plan = composePlan(`services:
  web: {image: demo/web:v1, networks: [front, outside]}
  db: {image: demo/db:v1}
networks:
  front:
    driver: overlay
    labels: {team: shop}
    internal: true
    attachable: true
    ipam: {driver: default, config: [{subnet: 10.77.0.0/24}]}
  outside: {external: true, name: public}
  unused: {}
`);
    expect(plan.networks).toEqual([
      { name: 'shop_front', labels: { team: 'shop', ...LABEL }, driver: 'overlay', subnet: '10.77.0.0/24', internal: true, attachable: true },
      { name: 'shop_default', labels: LABEL, driver: 'overlay', subnet: '', internal: false, attachable: false },
    ]);
    expect(plan.externalNetworks).toEqual(['public']);
  });

  it('compose stack plan names a declared default network as declared', () => {
    const plan = composePlan(`${webService('')}networks:\n  default: {name: shop-net}\n`);
    expect(plan.networks.map((network) => network.name)).toEqual(['shop-net']);
    expect(plan.services[0]?.taskTemplate?.networks).toEqual(['shop-net']);
  });

  it('compose stack plan creates every declared secret and config from its file, relative to the first file', () => {
    const plan = composePlan(`${webService('')}secrets:
  token: {file: ./token.txt, labels: {kind: api}}
  cert: {external: true}
configs:
  conf: {file: /etc/shop.conf, name: shop-conf-v2}
`);
    expect(plan.secrets).toEqual([{ key: 'token', name: 'shop_token', labels: { kind: 'api', ...LABEL }, file: '/srv/shop/token.txt' }]);
    expect(plan.externalSecrets).toEqual(['cert']);
    expect(plan.configs).toEqual([{ key: 'conf', name: 'shop-conf-v2', labels: LABEL, file: '/etc/shop.conf' }]);
    expect(plan.externalConfigs).toEqual([]);
  });

  it('compose stack plan ignores version, name and x- extensions, and sorts services by name', () => {
    const plan = composePlan(`version: "3.9"
name: ignored
x-common: &common {image: demo/app:v1}
services:
  worker: *common
  api:
    <<: *common
    x-note: internal
`);
    expect(plan.services.map((service) => [service.name, service.taskTemplate?.container?.image])).toEqual([['shop_api', 'demo/app:v1'], ['shop_worker', 'demo/app:v1']]);
  });

  it('compose stack plan takes named volumes with the local driver, named STACK_KEY', () => {
    const plan = composePlan(`${webService('    volumes: ["data:/data", "logs:/logs"]\n')}volumes:\n  data: {driver: local}\n  logs: {name: shared-logs}\n`);
    expect(plan.services[0]?.taskTemplate?.container?.mounts.map((mount) => mount.source)).toEqual(['shop_data', 'shared-logs']);
  });

  it('compose stack plan merges files in order, later ones overriding', () => {
    const base = `services:
  web:
    image: demo/web:v1
    command: [serve, --port, "80"]
    environment: [A=1, B=2]
    ports: ["8080:80"]
    networks: [front]
    volumes: ["data:/data"]
    deploy: {replicas: 2, labels: {tier: front}, placement: {constraints: [node.role==worker]}}
networks: {front: {}}
volumes: {data: {}}
`;
    const override = `services:
  web:
    image: demo/web:v2
    command: [serve]
    environment: {B: three, C: "4"}
    ports: ["8080:80", "9090:90"]
    networks: {back: {aliases: [api]}}
    volumes: ["./data:/data:ro"]
    deploy: {replicas: 5, labels: [env=prod], placement: {constraints: [node.labels.zone==a]}}
  db: {image: demo/db:v1}
networks: {back: {}}
`;
    const plan = composePlan([base, override]);
    const web = plan.services.find((service) => service.name === 'shop_web');
    expect(web?.taskTemplate?.container).toMatchObject({ image: 'demo/web:v2', args: ['serve'], env: ['A=1', 'B=three', 'C=4'] });
    expect(web?.taskTemplate?.container?.mounts).toEqual([{ type: 'bind', source: '/srv/shop/data', target: '/data', readOnly: true, tmpfsSizeBytes: 0, tmpfsMode: 0 }]);
    expect(web?.endpoint?.ports.map((port) => port.publishedPort)).toEqual([8080, 9090]);
    expect(web?.taskTemplate?.networks).toEqual(['shop_back', 'shop_front']);
    expect(web?.taskTemplate?.networkAliases).toEqual([{ network: 'shop_back', aliases: ['api', 'web'] }, { network: 'shop_front', aliases: ['web'] }]);
    expect(web?.mode).toEqual({ $case: 'replicated', value: { replicas: 5 } });
    expect(web?.labels).toMatchObject({ tier: 'front', env: 'prod' });
    expect(web?.taskTemplate?.placement?.constraints).toEqual(['node.role==worker', 'node.labels.zone==a']);
    expect(plan.services.map((service) => service.name)).toEqual(['shop_db', 'shop_web']);
  });

  it('compose stack plan interpolates variables from the environment, defaults included', () => {
    const plan = composePlan(`services:
  web:
    image: demo/web:\${TAG:-v1}
    environment:
      - GREETING=$HELLO world
      - PRICE=$$5
      - EMPTY=\${EMPTY_VAR-unset}
      - ALT=\${HELLO:+set}
`, { HELLO: 'hi', EMPTY_VAR: '' });
    expect(plan.services[0]?.taskTemplate?.container).toMatchObject({ image: 'demo/web:v1', env: ['ALT=set', 'EMPTY=', 'GREETING=hi world', 'PRICE=$5'] });
  });

  it('compose stack plan refuses a stack name its objects could not carry', () => {
    expect(stackNameProblem('shop')).toBeUndefined();
    expect(stackNameProblem('my.shop')).toBeDefined();
    expect(stackNameProblem('')).toBeDefined();
    expect(stackNameProblem('a'.repeat(62))).toBeDefined();
  });
});
