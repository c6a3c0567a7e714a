/**
 * A service's networks from the command line: `--network` (service create), `--network-add` and
 * `--network-rm` (service update). A network is given by name or id, or in Docker's long syntax
 * `name=NETWORK,alias=A,alias=B` (`target` for `name`), where each alias is one more DNS name of
 * the service on that network. The manager resolves names to ids and checks the aliases; this
 * only checks the syntax.
 */
import type { NetworkAliases, TaskSpec } from '../../proto/skiff/v1/specs.js';
import type { ControlConnection } from '../client.js';
import { FlagError } from './duration-flag.js';

/** A service's networks and the aliases it has on them, as the task template holds them. */
export type TaskNetworks = Pick<TaskSpec, 'networks' | 'networkAliases'>;

/** One network flag value: `NETWORK`, or `name=NETWORK[,alias=A…]`; `aliases` is empty without any. */
export function parseNetworkFlag(flag: string, value: string): NetworkAliases {
  const bad = (reason: string): FlagError => new FlagError(`invalid value "${value}" for ${flag}: ${reason}`);
  if (!value.includes('=')) {
    const network = value.trim();
    if (network === '') throw bad('a network name is required');
    return { network, aliases: [] };
  }
  let network: string | undefined;
  const aliases: string[] = [];
  for (const part of value.split(',')) {
    const equals = part.indexOf('=');
    if (equals < 0) throw bad(`"${part}" must be KEY=VALUE (name=NETWORK,alias=NAME…, or only the network's name)`);
    const key = part.slice(0, equals).trim().toLowerCase();
    const text = part.slice(equals + 1).trim();
    if (key === 'alias') {
      if (text === '') throw bad('an alias must not be empty');
      aliases.push(text);
    } else if (key === 'name' || key === 'target') {
      if (network !== undefined) throw bad('the network is given twice (name and target are the same field)');
      network = text;
    } else {
      throw bad(`unknown field "${key}" (use name or alias)`);
    }
  }
  if (network === undefined || network === '') throw bad('the network is missing (name=NETWORK)');
  return { network, aliases };
}

/** The values of a repeatable network flag: each network once, in order, with its aliases. */
export function parseNetworks(flag: string, values: readonly string[]): TaskNetworks {
  const entries = values.map((value) => parseNetworkFlag(flag, value));
  const networks: string[] = [];
  for (const { network } of entries) {
    if (networks.includes(network)) throw new FlagError(`invalid value "${network}" for ${flag}: given twice`);
    networks.push(network);
  }
  return { networks, networkAliases: entries.filter((entry) => entry.aliases.length > 0) };
}

/** The networks `--network-add` and `--network-rm` name, whose ids the CLI looks up before applying them. */
export function networkFlagReferences(add: readonly string[], remove: readonly string[]): string[] {
  return [...new Set([...parseNetworks('--network-add', add).networks, ...remove.map((reference) => reference.trim())])];
}

/** Each reference's network id, from the manager (a name, an id or an id prefix, as `network inspect` takes). */
export async function lookUpNetworkIds(connection: ControlConnection, references: readonly string[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const reference of references) {
    const { network } = await connection.call((c) => c.getNetwork, { network: reference });
    if (network?.meta !== undefined) ids.set(reference, network.meta.id);
  }
  return ids;
}

/**
 * The service's networks after `--network-add` and `--network-rm`. The spec holds ids and the
 * flags names or ids, so `ids` maps the flags' references to ids (one missing is kept as given,
 * for the manager to resolve). A removed network takes its aliases with it; an added one that
 * the service is on already is replaced, aliases included.
 */
export function applyNetworkFlags(current: TaskNetworks, add: readonly string[], remove: readonly string[], ids: ReadonlyMap<string, string>): TaskNetworks {
  const idOf = (reference: string): string => ids.get(reference) ?? reference;
  const added = parseNetworks('--network-add', add);
  const addedIds = added.networks.map(idOf);
  const dropped = new Set([...remove.map((reference) => idOf(reference.trim())), ...addedIds]);
  return {
    networks: [...current.networks.filter((network) => !dropped.has(network)), ...addedIds],
    networkAliases: [...current.networkAliases.filter((entry) => !dropped.has(entry.network)), ...added.networkAliases.map((entry) => ({ ...entry, network: idOf(entry.network) }))],
  };
}
