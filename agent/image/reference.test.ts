import { describe, expect, it } from 'vitest';
import { parseReference } from './reference.js';
import { ImageError } from './types.js';

const DEFAULT = 'registry.lab:5000';
const HEX = 'a'.repeat(64);

describe('parseReference', () => {
  it.each([
    ['demo/web:v1', { registry: DEFAULT, repository: 'demo/web', tag: 'v1', normalized: `${DEFAULT}/demo/web:v1` }],
    ['busybox', { registry: DEFAULT, repository: 'busybox', tag: 'latest', normalized: `${DEFAULT}/busybox:latest` }],
    ['198.18.0.1:5000/demo/web:v2', { registry: '198.18.0.1:5000', repository: 'demo/web', tag: 'v2' }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['localhost:5000/app', { registry: 'localhost:5000', repository: 'app', tag: 'latest' }],
    ['quay.io/org/team/app:1.2.3-rc_1', { registry: 'quay.io', repository: 'org/team/app', tag: '1.2.3-rc_1' }],
    [`demo/web@sha256:${HEX}`, { registry: DEFAULT, repository: 'demo/web', digest: `sha256:${HEX}`, normalized: `${DEFAULT}/demo/web@sha256:${HEX}` }],
    [`h:1/a:t@sha256:${HEX}`, { registry: 'h:1', repository: 'a', tag: 't', digest: `sha256:${HEX}`, normalized: `h:1/a@sha256:${HEX}` }],
    ['docker.io/busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['my_org/my-app__x:latest', { registry: DEFAULT, repository: 'my_org/my-app__x', tag: 'latest' }],
  ])('parses %s', (reference, expected) => {
    expect(parseReference(reference, DEFAULT)).toMatchObject(expected);
  });

  it.each([
    ['', 'reference is empty'],
    ['Demo/web', 'repository "Demo/web" must be lowercase'],
    ['demo/web:', 'tag "" must match'],
    ['demo/web:-bad', 'tag "-bad" must match'],
    ['demo//web', 'repository component "" must be'],
    ['demo/web@sha256:abc', 'digest "sha256:abc" is not sha256'],
    [`demo/web@md5:${HEX}`, 'must use sha256'],
    ['bad_host:5000/x', 'registry "bad_host:5000" is not a host[:port]'],
    ['a/-b', 'repository component "-b"'],
    [' demo/web', 'surrounding whitespace'],
  ])('rejects %j', (reference, reason) => {
    let caught: unknown;
    try {
      parseReference(reference, DEFAULT);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ImageError);
    expect((caught as ImageError).code).toBe('invalid_reference');
    expect((caught as ImageError).message).toMatch(new RegExp(`^cannot parse image reference "${reference.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": `));
    expect((caught as ImageError).message).toContain(reason);
  });
});
