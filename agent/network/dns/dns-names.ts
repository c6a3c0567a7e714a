/**
 * Name lookup of the embedded resolver, scoped per network (pure): a container sees only the
 * names of the networks it is on, first network first. On a network:
 * - `SERVICE`: its VIP, or with endpoint mode dnsrr the addresses of its ready tasks;
 * - `tasks.SERVICE`: the addresses of its ready tasks;
 * - an alias of a service on that network (TaskSpec.network_aliases), and `tasks.ALIAS`: the
 *   same as its name. Services that share an alias answer together (the union, as in Docker);
 *   a service's own name wins over another service's alias;
 * - a task name, `NAME.SLOT` (or `NAME.NODEID` for a global service) and `NAME.SLOT.TASKID`:
 *   that task's address.
 * Anything else is not ours: the resolver forwards it to the host's nameservers.
 */
import type { NetworkServiceView, NetworkView } from '../../../proto/skiff/v1/dispatcher.js';

export type NameLookup =
  /** Ours: these addresses (possibly none: a service without ready tasks has no A record). */
  | { kind: 'found'; addresses: string[] }
  /** Not a name of the container's networks. */
  | { kind: 'unknown' };

/** The bare address of a CIDR (`10.0.1.7/24` -> `10.0.1.7`). */
function bare(cidr: string): string {
  return cidr.split('/')[0] ?? '';
}

function readyAddresses(view: NetworkView, serviceId: string): string[] {
  return view.endpoints.filter((endpoint) => endpoint.serviceId === serviceId && endpoint.ready).map((endpoint) => bare(endpoint.address));
}

/** The services of the view that answer to `name`: the one of that name, else all with that alias. */
function servicesNamed(view: NetworkView, name: string): NetworkServiceView[] {
  const own = view.services.find((candidate) => candidate.name.toLowerCase() === name);
  if (own !== undefined) return [own];
  return view.services.filter((candidate) => candidate.aliases.some((alias) => alias.toLowerCase() === name));
}

/** The addresses `SERVICE` resolves to: the VIP, or with endpoint mode dnsrr the ready tasks'. */
function serviceAddresses(view: NetworkView, service: NetworkServiceView): string[] {
  return service.endpointMode !== 'dnsrr' && service.vip !== '' ? [bare(service.vip)] : readyAddresses(view, service.serviceId);
}

function lookupInView(name: string, view: NetworkView): string[] | undefined {
  if (name.startsWith('tasks.')) {
    const services = servicesNamed(view, name.slice('tasks.'.length));
    if (services.length > 0) return [...new Set(services.flatMap((service) => readyAddresses(view, service.serviceId)))];
  }
  const services = servicesNamed(view, name);
  if (services.length > 0) return [...new Set(services.flatMap((service) => serviceAddresses(view, service)))];
  const endpoint = view.endpoints.find((candidate) => {
    const taskName = candidate.taskName.toLowerCase();
    return taskName === name || `${taskName}.${candidate.taskId.toLowerCase()}` === name;
  });
  return endpoint === undefined ? undefined : [bare(endpoint.address)];
}

/** Looks `name` (lower-case, no trailing dot) up in the container's networks, in order. */
export function lookupName(name: string, scope: readonly NetworkView[]): NameLookup {
  for (const view of scope) {
    const addresses = lookupInView(name, view);
    if (addresses !== undefined) return { kind: 'found', addresses };
  }
  return { kind: 'unknown' };
}
