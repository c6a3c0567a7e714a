/**
 * Control API handlers for secrets and configs. Their data is never returned by any of them:
 * every object leaves with `spec.data` emptied. Their name and data never change once created
 * (an update may change the labels only, as in Swarm); removing one is refused while a service's
 * spec still uses it.
 */
import type { ControlServer } from '../../proto/skiff/v1/control.js';
import type { Config, Secret } from '../../proto/skiff/v1/objects.js';
import type { ConfigSpec, SecretSpec } from '../../proto/skiff/v1/specs.js';
import { newObjectId, type Store, type StoreReader } from '../store/store.js';
import { type ControlOptions, resolveNamed, unary, unaryRead } from './control-common.js';
import { ApiError } from './errors.js';
import { type DataKind, validateDataLabels, validateDataSpec } from './validate-secret.js';

type SecretHandlers = Pick<ControlServer,
  'createSecret' | 'getSecret' | 'listSecrets' | 'removeSecret' | 'updateSecret' | 'createConfig' | 'getConfig' | 'listConfigs' | 'removeConfig' | 'updateConfig'>;

/** Secret and Config have the same shape; this is either. */
type DataObject = Secret | Config;

/** The object as the API returns it: everything but the data. */
export function withoutData<T extends DataObject>(object: T): T {
  return { ...object, spec: object.spec === undefined ? undefined : { ...object.spec, data: new Uint8Array(0) } };
}

/** Finds a secret or config by exact id, exact name, or unique id prefix. */
export function resolveData(reader: StoreReader, kind: DataKind, reference: string): DataObject {
  return resolveNamed(reader, kind, reference);
}

/** Names of the services whose current spec uses the secret or config `id`, sorted. */
export function servicesUsing(reader: StoreReader, kind: DataKind, id: string): string[] {
  return reader
    .list('service')
    .filter((service) => {
      const container = service.spec?.taskTemplate?.container;
      if (container === undefined) return false;
      return kind === 'secret' ? container.secrets.some((reference) => reference.secretId === id) : container.configs.some((reference) => reference.configId === id);
    })
    .map((service) => service.spec?.name ?? service.meta?.id ?? '')
    .sort();
}

interface DataObjects {
  create(spec: SecretSpec | ConfigSpec | undefined): Promise<DataObject>;
  get(reference: string): DataObject;
  list(): DataObject[];
  remove(reference: string): Promise<void>;
  /** Replaces the labels; `version` 0 means the current one. */
  updateLabels(reference: string, version: number, spec: SecretSpec | ConfigSpec | undefined): Promise<DataObject>;
}

function dataObjects(store: Store, kind: DataKind): DataObjects {
  const reader = store.reader;
  return {
    async create(spec) {
      validateDataSpec(kind, spec);
      if (reader.findByName(kind, spec.name) !== undefined) {
        throw new ApiError('already_exists', `cannot create ${kind} "${spec.name}": a ${kind} with that name already exists`);
      }
      const id = newObjectId();
      const object: DataObject = { meta: { id, version: 0, createdAtMs: 0, updatedAtMs: 0 }, spec };
      // The store's name index refuses a concurrent create of the same name (ALREADY_EXISTS).
      await store.update((transaction) => (kind === 'secret' ? transaction.create('secret', object) : transaction.create('config', object)));
      const created = reader.get(kind, id);
      if (created === undefined) throw new ApiError('unavailable', `cannot create ${kind} "${spec.name}": it was removed right after it was created`);
      return withoutData(created);
    },
    get: (reference) => withoutData(resolveData(reader, kind, reference)),
    list: () => reader.list(kind).map((object) => withoutData(object)),
    async updateLabels(reference, version, spec) {
      const current = resolveData(reader, kind, reference);
      const id = current.meta?.id ?? '';
      const name = current.spec?.name ?? id;
      const action = `cannot update ${kind} "${name}"`;
      if (spec === undefined) throw new ApiError('invalid_argument', `${action}: spec is missing`);
      // Swarm's rule: a secret's or config's name and data are fixed; a stack deploy sends them again unchanged.
      if (spec.name !== name) throw new ApiError('invalid_argument', `${action}: its name cannot change (asked "${spec.name}"); only labels can be updated`);
      if (spec.data.length > 0 && !Buffer.from(spec.data).equals(Buffer.from(current.spec?.data ?? new Uint8Array(0)))) {
        throw new ApiError('invalid_argument', `${action}: its data cannot change; only labels can be updated. Create a ${kind} under a new name, point the services at it, then remove the old one`);
      }
      validateDataLabels(action, spec.labels);
      // The store refuses (ABORTED) an update whose version is not the stored one.
      const meta = current.meta === undefined ? undefined : { ...current.meta, version: version === 0 ? current.meta.version : version };
      const updated: DataObject = { meta, spec: { ...(current.spec ?? spec), labels: { ...spec.labels } } };
      await store.update((transaction) => (kind === 'secret' ? transaction.update('secret', updated) : transaction.update('config', updated)));
      return withoutData(reader.get(kind, id) ?? updated);
    },
    async remove(reference) {
      const current = resolveData(reader, kind, reference);
      const id = current.meta?.id ?? '';
      const name = current.spec?.name ?? id;
      await store.update((transaction, latest) => {
        // Checked against the state the transaction is built on, not the one read above.
        const users = servicesUsing(latest, kind, id);
        if (users.length > 0) {
          throw new ApiError('failed_precondition', `cannot remove ${kind} "${name}": it is in use by service${users.length > 1 ? 's' : ''} ${users.map((user) => `"${user}"`).join(', ')}`);
        }
        if (kind === 'secret') transaction.remove('secret', current);
        else transaction.remove('config', current);
      });
    },
  };
}

export function secretHandlers(store: Store, options: ControlOptions): SecretHandlers {
  const secrets = dataObjects(store, 'secret');
  const configs = dataObjects(store, 'config');
  return {
    createSecret: unary(options, async (request) => ({ secret: await secrets.create(request.spec) })),
    getSecret: unaryRead(store, options, (request) => ({ secret: secrets.get(request.secret) })),
    listSecrets: unaryRead(store, options, () => ({ secrets: secrets.list() })),
    removeSecret: unary(options, async (request) => {
      await secrets.remove(request.secret);
      return {};
    }),
    updateSecret: unary(options, async (request) => ({ secret: await secrets.updateLabels(request.secret, request.version, request.spec) })),
    createConfig: unary(options, async (request) => ({ config: await configs.create(request.spec) })),
    getConfig: unaryRead(store, options, (request) => ({ config: configs.get(request.config) })),
    listConfigs: unaryRead(store, options, () => ({ configs: configs.list() })),
    removeConfig: unary(options, async (request) => {
      await configs.remove(request.config);
      return {};
    }),
    updateConfig: unary(options, async (request) => ({ config: await configs.updateLabels(request.config, request.version, request.spec) })),
  };
}
