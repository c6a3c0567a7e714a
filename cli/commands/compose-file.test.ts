import { describe, expect, it } from 'vitest';
import { loadComposeFiles, parseComposeText } from './compose-file.js';
import { interpolate } from './compose-interpolate.js';
import { mergeComposeFiles } from './compose-merge.js';

const variables: Record<string, string> = { NAME: 'web', EMPTY: '', PORT: '80' };
const lookup = (name: string): string | undefined => variables[name];
const expand = (text: string): unknown => interpolate({ value: text }, lookup).value;

describe('compose file', () => {
  it('compose file interpolation follows Compose: $VAR, ${VAR}, defaults, alternatives and $$', () => {
    expect(expand('$NAME-${NAME}:$PORT')).toEqual({ value: 'web-web:80' });
    expect(expand('${EMPTY:-fallback} ${EMPTY-kept} ${UNSET-unset}')).toEqual({ value: 'fallback  unset' });
    expect(expand('${NAME:+yes}${EMPTY:+no}${EMPTY+set}${UNSET+no}')).toEqual({ value: 'yesset' });
    expect(expand('${UNSET:-${NAME:-x}-${PORT}}')).toEqual({ value: 'web-80' });
    expect(expand('price $$5, $${NAME}')).toEqual({ value: 'price $5, ${NAME}' });
  });

  it('compose file interpolation leaves keys and non-strings alone, and warns once per unset variable', () => {
    const result = interpolate({ services: { $KEY: { replicas: 3, image: '${MISSING}:${MISSING}', list: ['$NAME', true] } } }, lookup);
    expect(result.value).toEqual({ services: { $KEY: { replicas: 3, image: ':', list: ['web', true] } } });
    expect(result.warnings).toEqual(['The "MISSING" variable is not set. Defaulting to a blank string.']);
  });

  it('compose file interpolation refuses a required variable that is unset or empty', () => {
    expect(() => interpolate({ a: ['${EMPTY:?must be set}'] }, lookup)).toThrow('a[0]: required variable EMPTY is missing a value: must be set');
    expect(() => interpolate({ a: '${UNSET?}' }, lookup)).toThrow('a: required variable UNSET is missing a value');
    expect(interpolate({ a: '${EMPTY?}' }, lookup).value).toEqual({ a: '' });
  });

  it('compose file YAML reads leading-zero integers as octal, as Go does, and YAML 1.2 booleans only', () => {
    expect(parseComposeText({ name: 'a.yml', text: 'a: 0440\nb: 0o440\nc: 440\nd: yes\ne: "0440"\n' })).toEqual({ a: 0o440, b: 0o440, c: 440, d: 'yes', e: '0440' });
  });

  it('compose file loading interpolates each file and merges them in order, collecting warnings', () => {
    const loaded = loadComposeFiles(
      [
        { name: 'a.yml', text: 'services:\n  web: {image: "demo:${TAG}"}\n' },
        { name: 'b.yml', text: 'services:\n  web: {command: ["$NAME"]}\n' },
      ],
      lookup,
    );
    expect(loaded.document).toEqual({ services: { web: { image: 'demo:', command: ['web'] } } });
    expect(loaded.warnings).toEqual(['The "TAG" variable is not set. Defaulting to a blank string.']);
    expect(() => loadComposeFiles([{ name: 'b.yml', text: 'services: {web: {image: $}}\n' }], lookup)).toThrow('b.yml: services.web.image: invalid interpolation format');
  });

  it('compose file merging replaces commands and health tests, merges KEY=VALUE lists and mappings by key', () => {
    const merged = mergeComposeFiles([
      { services: { web: { command: ['a', 'b'], entrypoint: 'x', healthcheck: { test: ['CMD', 'a'], interval: '5s' }, environment: ['A=1', 'B=2'], labels: { x: '1' }, deploy: { labels: ['a=1'] } } } },
      { services: { web: { command: ['c'], healthcheck: { test: ['CMD', 'b'] }, environment: { B: '3' }, labels: ['y=2'], deploy: { labels: { b: '2' } } } } },
    ]);
    expect(merged).toEqual({
      services: { web: { command: ['c'], entrypoint: 'x', healthcheck: { test: ['CMD', 'b'], interval: '5s' }, environment: { A: '1', B: '3' }, labels: { x: '1', y: '2' }, deploy: { labels: { a: '1', b: '2' } } } },
    });
  });

  it('compose file merging keys volumes, secrets and configs by target, networks by name, and appends other lists', () => {
    const merged = mergeComposeFiles([
      { services: { web: { volumes: ['a:/data', '/cache'], secrets: ['token', { source: 'cert', target: 'tls' }], networks: ['front'], ports: ['80:80'], cap_add: ['NET_ADMIN'] } } },
      { services: { web: { volumes: [{ type: 'bind', source: './d', target: '/data' }], secrets: [{ source: 'cert2', target: 'tls' }], networks: { back: { aliases: ['b'] } }, ports: ['80:80', '90:90'], cap_add: ['SYS_TIME'] } } },
    ]);
    expect(merged).toEqual({
      services: {
        web: {
          volumes: [{ type: 'bind', source: './d', target: '/data' }, '/cache'],
          secrets: ['token', { source: 'cert2', target: 'tls' }],
          networks: { front: null, back: { aliases: ['b'] } },
          ports: ['80:80', '90:90'],
          cap_add: ['NET_ADMIN', 'SYS_TIME'],
        },
      },
    });
  });

  it('compose file merging lets a later value of another type replace the earlier one', () => {
    expect(mergeComposeFiles([{ services: { web: { image: 'a', ports: ['80'] } } }, { services: { web: { image: 'b', ports: 'oops' } } }])).toEqual({ services: { web: { image: 'b', ports: 'oops' } } });
  });
});
