/**
 * A service's secret and config references: their shape (names, targets, ownership, modes, no
 * two files at one path), checked with the rest of the spec; and their resolution to stored
 * objects by name at service create and update, which fills in `secretId` / `configId`.
 */
import type { ConfigReference, ContainerSpec, SecretReference, ServiceSpec } from '../../proto/skiff/v1/specs.js';
import type { StoreReader } from '../store/store.js';
import { ApiError, invalid } from './errors.js';
import { dataNameProblem, describeLimit } from './validate-secret.js';

/** Secret references of one service at most, and config references likewise. */
export const MAX_REFERENCES_PER_KIND = 256;
/**
 * Bytes of secret and config data one task may use in all. Its node receives them in the same
 * dispatcher message as the task, which must stay well under the agent's message size limit.
 */
export const MAX_TASK_DATA_BYTES = 2 * 1024 * 1024;
/** Where secrets appear inside a container. */
export const SECRETS_DIR = '/run/secrets';
const MAX_FILE_MODE = 0o777;
const MAX_ID = 2 ** 32 - 1;
const MAX_TARGET_LENGTH = 1024;
/** Kernel filesystems a config may not be mounted into. */
const FORBIDDEN_CONFIG_ROOTS = ['/proc', '/sys'];

/** The path of a secret inside the container: /run/secrets/<target, default the secret's name>. */
export function secretPath(reference: SecretReference): string {
  return `${SECRETS_DIR}/${reference.target === '' ? reference.secretName : reference.target}`;
}

/** The path of a config inside the container: its target, default /<the config's name>. */
export function configPath(reference: ConfigReference): string {
  return reference.target === '' ? `/${reference.configName}` : reference.target;
}

function componentsProblem(components: readonly string[]): string | undefined {
  if (components.some((component) => component === '' || component === '.' || component === '..')) return 'must not contain empty, "." or ".." path components';
  if (components.some((component) => component.includes('\0'))) return 'must not contain NUL';
  return undefined;
}

function secretTargetProblem(target: string): string | undefined {
  if (target.length > MAX_TARGET_LENGTH) return `is longer than ${MAX_TARGET_LENGTH} characters`;
  if (target.startsWith('/')) return `must be a path relative to ${SECRETS_DIR}`;
  return componentsProblem(target.split('/'));
}

function configTargetProblem(target: string): string | undefined {
  if (target.length > MAX_TARGET_LENGTH) return `is longer than ${MAX_TARGET_LENGTH} characters`;
  if (!target.startsWith('/')) return 'must be an absolute path';
  if (target === '/') return 'must name a file, not /';
  const root = FORBIDDEN_CONFIG_ROOTS.find((forbidden) => target === forbidden || target.startsWith(`${forbidden}/`));
  if (root !== undefined) return `must not be under ${root}`;
  return componentsProblem(target.slice(1).split('/'));
}

interface FileUse {
  what: string;
  path: string;
  uid: number;
  gid: number;
  mode: number;
}

function checkFileUse(use: FileUse): void {
  for (const [field, value] of [['uid', use.uid], ['gid', use.gid]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > MAX_ID) throw invalid(`cannot accept service spec: ${field} of ${use.what} must be an integer from 0 to ${MAX_ID}`);
  }
  if (!Number.isInteger(use.mode) || use.mode < 0 || use.mode > MAX_FILE_MODE) {
    throw invalid(`cannot accept service spec: mode 0${use.mode.toString(8)} of ${use.what} must be at most 0${MAX_FILE_MODE.toString(8)}`);
  }
}

/**
 * Throws ApiError('invalid_argument') naming the first bad reference: a bad name, target, uid,
 * gid or mode; too many references; two files at one path, or one file inside another's path.
 */
export function validateReferences(container: ContainerSpec): void {
  for (const [kind, count] of [['secrets', container.secrets.length], ['configs', container.configs.length]] as const) {
    if (count > MAX_REFERENCES_PER_KIND) throw invalid(`cannot accept service spec: ${count} ${kind}, more than ${MAX_REFERENCES_PER_KIND}`);
  }
  const uses: FileUse[] = [];
  for (const reference of container.secrets) {
    const nameProblem = dataNameProblem(reference.secretName);
    if (nameProblem !== undefined) throw invalid(`cannot accept service spec: secret name "${reference.secretName}" ${nameProblem}`);
    const what = `secret "${reference.secretName}"`;
    const targetProblem = reference.target === '' ? undefined : secretTargetProblem(reference.target);
    if (targetProblem !== undefined) throw invalid(`cannot accept service spec: target "${reference.target}" of ${what} ${targetProblem}`);
    uses.push({ what, path: secretPath(reference), uid: reference.uid, gid: reference.gid, mode: reference.mode });
  }
  for (const reference of container.configs) {
    const nameProblem = dataNameProblem(reference.configName);
    if (nameProblem !== undefined) throw invalid(`cannot accept service spec: config name "${reference.configName}" ${nameProblem}`);
    const what = `config "${reference.configName}"`;
    const targetProblem = reference.target === '' ? undefined : configTargetProblem(reference.target);
    if (targetProblem !== undefined) throw invalid(`cannot accept service spec: target "${reference.target}" of ${what} ${targetProblem}`);
    uses.push({ what, path: configPath(reference), uid: reference.uid, gid: reference.gid, mode: reference.mode });
  }
  const byPath = new Map<string, FileUse>();
  for (const use of uses) {
    checkFileUse(use);
    const other = byPath.get(use.path);
    if (other !== undefined) throw invalid(`cannot accept service spec: ${other.what} and ${use.what} both target ${use.path}`);
    byPath.set(use.path, use);
  }
  for (const use of uses) {
    // A file cannot be mounted below another file: /run/secrets/a and /run/secrets/a/b clash.
    for (let parent = use.path.slice(0, use.path.lastIndexOf('/')); parent !== ''; parent = parent.slice(0, parent.lastIndexOf('/'))) {
      const outer = byPath.get(parent);
      if (outer !== undefined) throw invalid(`cannot accept service spec: ${use.what} at ${use.path} would be inside the file of ${outer.what} at ${outer.path}`);
    }
  }
}

/**
 * The spec with every reference's id filled in from the secret or config of that name. Throws
 * ApiError('not_found') for an unknown name and ApiError('invalid_argument') when the data the
 * task would use exceeds MAX_TASK_DATA_BYTES. `action` starts the messages ("cannot create service \"web\"").
 */
export function resolveReferences(reader: Pick<StoreReader, 'findByName'>, spec: ServiceSpec, action: string): ServiceSpec {
  const template = spec.taskTemplate;
  const container = template?.container;
  if (template === undefined || container === undefined) return spec;
  let totalBytes = 0;
  const counted = new Set<string>();
  const count = (key: string, bytes: number): void => {
    if (counted.has(key)) return;
    counted.add(key);
    totalBytes += bytes;
  };
  const secrets = container.secrets.map((reference) => {
    const found = reader.findByName('secret', reference.secretName);
    if (found?.meta === undefined) throw new ApiError('not_found', `${action}: secret "${reference.secretName}" not found`);
    count(`secret/${found.meta.id}`, found.spec?.data.length ?? 0);
    return { ...reference, secretId: found.meta.id };
  });
  const configs = container.configs.map((reference) => {
    const found = reader.findByName('config', reference.configName);
    if (found?.meta === undefined) throw new ApiError('not_found', `${action}: config "${reference.configName}" not found`);
    count(`config/${found.meta.id}`, found.spec?.data.length ?? 0);
    return { ...reference, configId: found.meta.id };
  });
  if (totalBytes > MAX_TASK_DATA_BYTES) {
    throw invalid(`${action}: its secrets and configs hold ${totalBytes} bytes, more than the limit of ${describeLimit(MAX_TASK_DATA_BYTES)} per task`);
  }
  return { ...spec, taskTemplate: { ...template, container: { ...container, secrets, configs } } };
}
