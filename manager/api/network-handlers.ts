/**
 * Control API handlers for networks, and what services need of them: a service names its
 * networks (by name or id), and those of its network aliases, and the spec stores their ids;
 * ingress published ports are unique in the cluster. The allocator (manager/allocator) gives networks their subnet and VXLAN id.
 */
import { networkNameProblem } from '../../common/object-names.js';
import type { ControlServer } from '../../proto/skiff/v1/control.js';
import type { Network } from '../../proto/skiff/v1/objects.js';
import type { NetworkAliases, NetworkSpec, ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { CidrError, overlaps, parseCidr } from '../allocator/ipam.js';
import { taskReleased } from '../allocator/allocator-state.js';
import { newObjectId, type Store, type StoreReader } from '../store/store.js';
import { type ControlOptions, resolveNamed, unary, unaryRead } from './control-common.js';
import { ApiError, invalid } from './errors.js';

type NetworkHandlers = Pick<ControlServer, 'createNetwork' | 'getNetwork' | 'listNetworks' | 'removeNetwork'>;

const DRIVERS = new Set(['overlay']);
/** A network needs room for a gateway, a VIP and a task: at most a /29. */
const SMALLEST_SUBNET_PREFIX = 29;
const MAX_LABELS = 64;
/** Networks one service joins at most. */
export const MAX_SERVICE_NETWORKS = 16;

/** Throws ApiError('invalid_argument') naming the first bad field of a network spec. */
export function validateNetworkSpec(spec: NetworkSpec | undefined): asserts spec is NetworkSpec {
  const refuse = (field: string, problem: string): ApiError => invalid(`cannot accept network spec: ${field} ${problem}`);
  if (spec === undefined) throw invalid('cannot accept network spec: spec is missing');
  const nameProblem = networkNameProblem(spec.name);
  if (nameProblem !== undefined) throw refuse('name', `"${spec.name}" ${nameProblem}`);
  if (spec.driver !== '' && !DRIVERS.has(spec.driver)) throw refuse('driver', `"${spec.driver}" is not supported (use overlay)`);
  if (Object.keys(spec.labels).length > MAX_LABELS) throw refuse('labels', `has more than ${MAX_LABELS} entries`);
  if (spec.subnet !== '') {
    let prefix: number;
    try {
      prefix = parseCidr(spec.subnet).prefix;
    } catch (error) {
      if (error instanceof CidrError) throw refuse('subnet', error.message);
      throw error;
    }
    if (prefix > SMALLEST_SUBNET_PREFIX) throw refuse('subnet', `"${spec.subnet}" is too small: use a /${SMALLEST_SUBNET_PREFIX} or larger`);
  }
}

/** Finds a network by exact id, exact name, or unique id prefix. */
export function resolveNetwork(reader: StoreReader, reference: string): Network {
  return resolveNamed(reader, 'network', reference);
}

/** A network a service names, by id or by name: the one lookup for `networks` and `networkAliases`. */
function findServiceNetwork(reader: Pick<StoreReader, 'get' | 'findByName'>, reference: string): Network | undefined {
  return reader.get('network', reference) ?? reader.findByName('network', reference);
}

/**
 * The alias entries with their networks as ids, as `networks` stores them (so that an entry's
 * network equals the stored one). An entry must name one of `networkIds`, and each network has
 * one entry at most.
 */
function resolveNetworkAliases(reader: Pick<StoreReader, 'get' | 'findByName'>, entries: readonly NetworkAliases[], networkIds: readonly string[], action: string): NetworkAliases[] {
  const resolved: NetworkAliases[] = [];
  for (const [index, entry] of entries.entries()) {
    const field = `taskTemplate.networkAliases[${index}].network`;
    const id = findServiceNetwork(reader, entry.network)?.meta?.id;
    if (id === undefined) throw new ApiError('not_found', `${action}: ${field}: network "${entry.network}" not found`);
    if (!networkIds.includes(id)) throw invalid(`${action}: ${field}: network "${entry.network}" is not one of the service's networks`);
    const earlier = resolved.findIndex((other) => other.network === id);
    if (earlier >= 0) throw invalid(`${action}: ${field}: network "${entry.network}" already has its aliases in taskTemplate.networkAliases[${earlier}]`);
    resolved.push({ ...entry, network: id });
  }
  return resolved;
}

/**
 * The spec with its networks, and the networks of its aliases, as ids (given as names or ids),
 * each once; unknown ones are refused, and so are aliases on a network the service is not on.
 */
export function resolveServiceNetworks(reader: Pick<StoreReader, 'get' | 'findByName'>, spec: ServiceSpec, action: string): ServiceSpec {
  const template = spec.taskTemplate;
  if (template === undefined || (template.networks.length === 0 && template.networkAliases.length === 0)) return spec;
  if (template.networks.length > MAX_SERVICE_NETWORKS) throw invalid(`${action}: ${template.networks.length} networks, more than ${MAX_SERVICE_NETWORKS}`);
  const ids: string[] = [];
  for (const reference of template.networks) {
    const found = findServiceNetwork(reader, reference);
    if (found?.meta === undefined) throw new ApiError('not_found', `${action}: network "${reference}" not found`);
    if (ids.includes(found.meta.id)) throw invalid(`${action}: network "${reference}" is given twice`);
    ids.push(found.meta.id);
  }
  return { ...spec, taskTemplate: { ...template, networks: ids, networkAliases: resolveNetworkAliases(reader, template.networkAliases, ids, action) } };
}

/**
 * Refuses an ingress published port another service already publishes (the allocator is the
 * final word; this answers the user at once). `serviceId` is the service being updated, if any.
 */
export function checkPublishedPorts(reader: StoreReader, spec: ServiceSpec, serviceId: string, action: string): void {
  for (const port of spec.endpoint?.ports ?? []) {
    if (port.publishMode === 'host' || port.publishedPort === 0) continue;
    const protocol = port.protocol === '' ? 'tcp' : port.protocol;
    for (const other of reader.list('service')) {
      if (other.meta?.id === serviceId) continue;
      const taken = [...(other.endpoint?.ports ?? []), ...(other.spec?.endpoint?.ports ?? [])].some(
        (theirs) => theirs.publishMode !== 'host' && theirs.publishedPort === port.publishedPort && (theirs.protocol === '' ? 'tcp' : theirs.protocol) === protocol,
      );
      if (taken) throw new ApiError('already_exists', `${action}: port ${port.publishedPort}/${protocol} is already published by service "${other.spec?.name ?? other.meta?.id ?? ''}"`);
    }
  }
}

/** Why a network cannot be removed now: the services whose spec uses it, or tasks that still hold addresses on it. */
function networkUsers(reader: StoreReader, id: string): string[] {
  const services = reader.list('service').filter((service) => service.spec?.taskTemplate?.networks.includes(id) === true).map((service) => `service "${service.spec?.name ?? ''}"`);
  if (services.length > 0) return services.sort();
  const tasks = reader.list('task').filter((task) => !taskReleased(task) && task.networks.some((attachment) => attachment.network === id));
  return tasks.length === 0 ? [] : [`${tasks.length} task(s) still stopping`];
}

export function networkHandlers(store: Store, options: ControlOptions): NetworkHandlers {
  const reader = store.reader;
  return {
    createNetwork: unary(options, async (request) => {
      validateNetworkSpec(request.spec);
      const spec: NetworkSpec = { ...request.spec, driver: request.spec.driver || 'overlay' };
      if (reader.findByName('network', spec.name) !== undefined) throw new ApiError('already_exists', `cannot create network "${spec.name}": a network with that name already exists`);
      if (spec.subnet !== '') {
        const wanted = parseCidr(spec.subnet);
        for (const other of reader.list('network')) {
          const theirs = other.allocation?.subnet || other.spec?.subnet || '';
          if (theirs !== '' && overlaps(parseCidr(theirs), wanted)) {
            throw new ApiError('already_exists', `cannot create network "${spec.name}": subnet ${spec.subnet} overlaps ${theirs} of network "${other.spec?.name ?? ''}"`);
          }
        }
      }
      const id = newObjectId();
      await store.update((transaction) => transaction.create('network', { meta: { id, version: 0, createdAtMs: 0, updatedAtMs: 0 }, spec, allocation: undefined }));
      const created = reader.get('network', id);
      if (created === undefined) throw new ApiError('unavailable', `cannot create network "${spec.name}": it was removed right after it was created`);
      return { network: created };
    }),
    getNetwork: unaryRead(store, options, (request) => ({ network: resolveNetwork(reader, request.network) })),
    listNetworks: unaryRead(store, options, () => ({ networks: reader.list('network') })),
    removeNetwork: unary(options, async (request) => {
      const current = resolveNetwork(reader, request.network);
      const id = current.meta?.id ?? '';
      await store.update((transaction, latest) => {
        const users = networkUsers(latest, id);
        if (users.length > 0) throw new ApiError('failed_precondition', `cannot remove network "${current.spec?.name ?? id}": in use by ${users.join(', ')}`);
        const now = latest.get('network', id);
        if (now !== undefined) transaction.remove('network', now);
      });
      return {};
    }),
  };
}
