import { describe, expect, it } from 'vitest';
import type { Config, Secret } from '../../proto/skiff/v1/objects.js';
import type { ConfigReference, ContainerSpec, SecretReference } from '../../proto/skiff/v1/specs.js';
import type { StoreReader } from '../store/store.js';
import { fakeServiceSpec } from './testing/fake-cluster.js';
import { refusal } from './testing/refusal.js';
import { configPath, MAX_REFERENCES_PER_KIND, MAX_TASK_DATA_BYTES, resolveReferences, secretPath, validateReferences } from './validate-references.js';

const secretRef = (name: string, overrides: Partial<SecretReference> = {}): SecretReference => ({ secretId: '', secretName: name, target: '', uid: 0, gid: 0, mode: 0, ...overrides });
const configRef = (name: string, overrides: Partial<ConfigReference> = {}): ConfigReference => ({ configId: '', configName: name, target: '', uid: 0, gid: 0, mode: 0, ...overrides });

function container(secrets: SecretReference[], configs: ConfigReference[] = []): ContainerSpec {
  return { ...fakeServiceSpec('web', 1).taskTemplate!.container!, secrets, configs };
}

describe('validate references', () => {
  it('references default to /run/secrets/<name> and /<name>', () => {
    expect(secretPath(secretRef('db'))).toBe('/run/secrets/db');
    expect(secretPath(secretRef('db', { target: 'nested/password' }))).toBe('/run/secrets/nested/password');
    expect(configPath(configRef('app.conf'))).toBe('/app.conf');
    expect(configPath(configRef('app.conf', { target: '/etc/app.conf' }))).toBe('/etc/app.conf');
  });

  it('references accept names, targets, owners and modes like Docker', () => {
    expect(refusal(() => validateReferences(container([secretRef('db'), secretRef('db', { target: 'copy', uid: 1000, gid: 1000, mode: 0o400 })], [configRef('a.conf', { target: '/etc/a.conf', mode: 0o644 })])))).toBe('accepted');
  });

  const refused: Array<[string, ContainerSpec, string]> = [
    ['a bad secret name', container([secretRef('-db')]), 'secret name "-db" must start with a letter or digit'],
    ['a secret name longer than 64', container([secretRef('a'.repeat(65))]), 'is longer than 64 characters'],
    ['an empty config name', container([], [configRef('')]), 'config name "" must not be empty'],
    ['an absolute secret target', container([secretRef('db', { target: '/etc/db' })]), 'target "/etc/db" of secret "db" must be a path relative to /run/secrets'],
    ['a secret target escaping /run/secrets', container([secretRef('db', { target: '../db' })]), 'must not contain empty, "." or ".." path components'],
    ['a relative config target', container([], [configRef('app', { target: 'etc/app' })]), 'target "etc/app" of config "app" must be an absolute path'],
    ['a config target under /proc', container([], [configRef('app', { target: '/proc/app' })]), 'must not be under /proc'],
    ['a config target of /', container([], [configRef('app', { target: '/' })]), 'must name a file, not /'],
    ['a mode above 0777', container([secretRef('db', { mode: 0o4755 })]), 'mode 04755 of secret "db" must be at most 0777'],
    ['two secrets at one target', container([secretRef('a', { target: 'x' }), secretRef('b', { target: 'x' })]), 'secret "a" and secret "b" both target /run/secrets/x'],
    ['a config at a secret path', container([secretRef('db')], [configRef('app', { target: '/run/secrets/db' })]), 'secret "db" and config "app" both target /run/secrets/db'],
    ['a file inside another', container([secretRef('a'), secretRef('b', { target: 'a/b' })]), 'secret "b" at /run/secrets/a/b would be inside the file of secret "a" at /run/secrets/a'],
    ['too many secrets', container(Array.from({ length: MAX_REFERENCES_PER_KIND + 1 }, (_, index) => secretRef(`s${index}`))), `more than ${MAX_REFERENCES_PER_KIND}`],
  ];
  it.each(refused)('references refuse %s, naming it', (_case, spec, message) => {
    const result = refusal(() => validateReferences(spec));
    expect(result).toMatch(/^invalid_argument: cannot accept service spec: /);
    expect(result).toContain(message);
  });
});

describe('resolve references', () => {
  const stored = (id: string, name: string, bytes: number): Secret & Config => ({ meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec: { name, labels: {}, data: new Uint8Array(bytes) } });
  const byKind: Record<string, Array<Secret & Config>> = { secret: [stored('sid1', 'db', 10), stored('sidbig', 'big', MAX_TASK_DATA_BYTES)], config: [stored('cid1', 'app', 20)] };
  // Only findByName is read; the cast narrows a fake to the reader's type.
  const reader = { findByName: (kind: string, name: string) => byKind[kind]?.find((object) => object.spec?.name === name) } as unknown as Pick<StoreReader, 'findByName'>;
  const withReferences = (secrets: SecretReference[], configs: ConfigReference[] = []) => {
    const spec = fakeServiceSpec('web', 1);
    return { ...spec, taskTemplate: { ...spec.taskTemplate!, container: { ...spec.taskTemplate!.container!, secrets, configs } } };
  };

  it('resolve references fills in ids by name and keeps everything else', () => {
    const resolved = resolveReferences(reader, withReferences([secretRef('db', { target: 'x', secretId: 'stale' })], [configRef('app')]), 'cannot create service "web"');
    expect(resolved.taskTemplate?.container?.secrets).toEqual([secretRef('db', { target: 'x', secretId: 'sid1' })]);
    expect(resolved.taskTemplate?.container?.configs).toEqual([configRef('app', { configId: 'cid1' })]);
  });

  it('resolve references refuses an unknown name with NOT_FOUND naming it', () => {
    expect(refusal(() => resolveReferences(reader, withReferences([secretRef('x')]), 'cannot create service "web"'))).toBe('not_found: cannot create service "web": secret "x" not found');
    expect(refusal(() => resolveReferences(reader, withReferences([], [configRef('db')]), 'cannot update service "web"'))).toBe('not_found: cannot update service "web": config "db" not found');
  });

  it('resolve references counts each object once against the per-task data limit', () => {
    expect(refusal(() => resolveReferences(reader, withReferences([secretRef('big'), secretRef('big', { target: 'again' })]), 'cannot create service "web"'))).toBe('accepted');
    expect(refusal(() => resolveReferences(reader, withReferences([secretRef('big'), secretRef('db')]), 'cannot create service "web"'))).toBe(
      `invalid_argument: cannot create service "web": its secrets and configs hold ${MAX_TASK_DATA_BYTES + 10} bytes, more than the limit of 2 MiB (${MAX_TASK_DATA_BYTES} bytes) per task`,
    );
  });
});
