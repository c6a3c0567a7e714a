/**
 * `skiff stack deploy`: reads the Compose files, has them checked whole (compose.ts) and every
 * secret and config file read before the first write, then creates or updates, in order, the
 * stack's networks, secrets, configs and services, as `docker stack deploy` does, printing its
 * progress lines. An unchanged service is sent again and the manager keeps its spec version.
 */
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Service } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { CliError, type ControlConnection } from '../client.js';
import { loadComposeFiles, type ComposeSource } from './compose-file.js';
import { IMAGE_LABEL, NAMESPACE_LABEL, type PlannedData, type StackPlan, translateCompose } from './compose.js';
import { readInput } from './secret.js';
import { parseDuration } from './service-flags.js';
import { waitForConvergence } from './service-progress.js';
import { followUpdate } from './service-update.js';

/** Most Compose files one deploy merges. */
export const MAX_COMPOSE_FILES = 16;

export type ResolveImage = 'always' | 'never';

export interface DeployFlags {
  composeFile: string[];
  prune: boolean;
  resolveImage: string;
  detach: boolean;
  timeout: string;
}

/** A planned secret or config with its bytes. */
interface DataToWrite extends PlannedData {
  data: Uint8Array;
}

type Write = (line: string) => void;

/** Whether `object` carries the label of `stack`. */
export function inStack(object: { spec?: { labels: Record<string, string> } | undefined }, stack: string): boolean {
  return object.spec?.labels[NAMESPACE_LABEL] === stack;
}

/**
 * The spec to send for a service the stack already has: the file's, with what a Compose file cannot
 * say kept from the stored spec (the update strategy and its settings, rebalancing, the --force
 * counter), and with `--resolve-image never` the stored image when the file names the same image
 * as last time (it may have been pinned to a digest then). Anything else the file says wins.
 */
export function specForUpdate(file: ServiceSpec, stored: ServiceSpec, resolveImage: ResolveImage): ServiceSpec {
  const template = file.taskTemplate;
  const container = template?.container;
  if (template === undefined || container === undefined) return file;
  const storedImage = stored.taskTemplate?.container?.image;
  const keepImage = resolveImage === 'never' && storedImage !== undefined && stored.labels[IMAGE_LABEL] === container.image;
  return {
    ...file,
    deployStrategy: stored.deployStrategy,
    rebalance: stored.rebalance,
    bluegreenHoldMs: stored.bluegreenHoldMs,
    canaryReplicas: stored.canaryReplicas,
    taskTemplate: { ...template, forceUpdate: stored.taskTemplate?.forceUpdate ?? 0, container: keepImage ? { ...container, image: storedImage } : container },
  };
}

export function parseResolveImage(value: string): ResolveImage {
  if (value !== 'always' && value !== 'never') throw new CliError(`invalid value "${value}" for --resolve-image: use always or never`);
  return value;
}

/** The Compose files' texts; relative paths in them resolve against the first one's directory (the current one for stdin). */
async function readComposeFiles(files: readonly string[]): Promise<{ sources: ComposeSource[]; directory: string }> {
  if (files.length === 0) throw new CliError('cannot deploy a stack without a Compose file: give -c FILE');
  if (files.length > MAX_COMPOSE_FILES) throw new CliError(`cannot deploy a stack from ${files.length} Compose files: at most ${MAX_COMPOSE_FILES}`);
  const sources: ComposeSource[] = [];
  for (const file of files) sources.push({ name: file, text: Buffer.from(await readInput(file)).toString('utf8') });
  return { sources, directory: files[0] === '-' ? process.cwd() : dirname(resolve(files[0] ?? '.')) };
}

async function readData(kind: 'secrets' | 'configs', planned: readonly PlannedData[]): Promise<DataToWrite[]> {
  const result: DataToWrite[] = [];
  for (const entry of planned) {
    try {
      result.push({ ...entry, data: await readInput(entry.file) });
    } catch (error) {
      throw new CliError(`${kind}.${entry.key}.file: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return result;
}

/** The checked stack, its secrets' and configs' data read, and how to deploy it. */
export interface PlannedDeploy {
  plan: StackPlan;
  secrets: DataToWrite[];
  configs: DataToWrite[];
  prune: boolean;
  resolveImage: ResolveImage;
  detach: boolean;
  timeoutMs: number;
}

/** Reads and checks everything (flags, files, every value of the Compose files); nothing is written yet. */
export async function planDeploy(stack: string, flags: DeployFlags, warn: Write): Promise<PlannedDeploy> {
  const resolveImage = parseResolveImage(flags.resolveImage);
  const timeoutMs = parseDuration('--timeout', flags.timeout);
  const { sources, directory } = await readComposeFiles(flags.composeFile);
  const lookup = (name: string): string | undefined => process.env[name];
  const { document, warnings } = loadComposeFiles(sources, lookup);
  for (const warning of warnings) warn(warning);
  const plan = translateCompose(document, { stack, directory, home: homedir(), environment: lookup });
  const secrets = await readData('secrets', plan.secrets);
  const configs = await readData('configs', plan.configs);
  return { plan, secrets, configs, prune: flags.prune, resolveImage, detach: flags.detach, timeoutMs };
}

/** What the cluster holds now, by name. */
interface Current {
  networks: Map<string, { spec?: { labels: Record<string, string> } | undefined }>;
  secrets: Map<string, { meta?: { id: string; version: number } | undefined }>;
  configs: Map<string, { meta?: { id: string; version: number } | undefined }>;
  services: Map<string, Service>;
}

async function readCurrent(connection: ControlConnection): Promise<Current> {
  const [networks, secrets, configs, services] = await Promise.all([
    connection.call((c) => c.listNetworks, {}),
    connection.call((c) => c.listSecrets, {}),
    connection.call((c) => c.listConfigs, {}),
    connection.call((c) => c.listServices, {}),
  ]);
  const byName = <T extends { spec?: { name: string } | undefined }>(objects: readonly T[]): Map<string, T> => new Map(objects.map((object) => [object.spec?.name ?? '', object]));
  return { networks: byName(networks.networks), secrets: byName(secrets.secrets), configs: byName(configs.configs), services: byName(services.services) };
}

/** Refuses, before any write, external objects that are missing and names taken by objects of no stack or another one. */
function checkCurrent(plan: StackPlan, current: Current): void {
  const action = `cannot deploy stack "${plan.stack}"`;
  for (const [kind, names, existing] of [['network', plan.externalNetworks, current.networks], ['secret', plan.externalSecrets, current.secrets], ['config', plan.externalConfigs, current.configs]] as const) {
    const missing = names.find((name) => !existing.has(name));
    if (missing !== undefined) throw new CliError(`${action}: ${kind} "${missing}" is declared external but does not exist; create it first (skiff ${kind} create ${missing} ...)`);
  }
  for (const network of plan.networks) {
    const found = current.networks.get(network.name);
    if (found !== undefined && !inStack(found, plan.stack)) throw new CliError(`${action}: network "${network.name}" exists and is not part of the stack`);
  }
  for (const service of plan.services) {
    const found = current.services.get(service.name);
    if (found !== undefined && !inStack(found, plan.stack)) throw new CliError(`${action}: service "${service.name}" exists and is not part of the stack`);
  }
}

/** Creates the secrets or configs that are missing; sends the others again, which the manager refuses when their data differs. */
async function writeData(connection: ControlConnection, kind: 'secret' | 'config', entries: readonly DataToWrite[], existing: Current['secrets'], write: Write): Promise<void> {
  for (const entry of entries) {
    const spec = { name: entry.name, labels: entry.labels, data: entry.data };
    const found = existing.get(entry.name)?.meta;
    if (found === undefined) {
      write(`Creating ${kind} ${entry.name}`);
      if (kind === 'secret') await connection.call((c) => c.createSecret, { spec });
      else await connection.call((c) => c.createConfig, { spec });
      continue;
    }
    try {
      if (kind === 'secret') await connection.call((c) => c.updateSecret, { secret: found.id, version: found.version, spec });
      else await connection.call((c) => c.updateConfig, { config: found.id, version: found.version, spec });
    } catch (error) {
      if (!(error instanceof CliError) || !error.message.includes('data cannot change')) throw error;
      throw new CliError(`cannot update ${kind} "${entry.name}": ${entry.file} holds other data than the stored ${kind}, and a ${kind}'s data never changes. Give it a new name in the Compose file (name: ${entry.name}_v2), deploy, then remove the old one`);
    }
  }
}

/** Writes a planned stack: networks, secrets, configs, then services; then waits unless detached. */
export async function applyDeploy(connection: ControlConnection, planned: PlannedDeploy, write: Write): Promise<void> {
  const { plan, resolveImage } = planned;
  const current = await readCurrent(connection);
  checkCurrent(plan, current);
  // Pruned first, as Docker does: a removed service frees its published ports for the others.
  if (planned.prune) {
    const wanted = new Set(plan.services.map((service) => service.name));
    for (const [name, service] of current.services) {
      if (!inStack(service, plan.stack) || wanted.has(name)) continue;
      write(`Removing service ${name}`);
      await connection.call((c) => c.removeService, { service: service.meta?.id ?? name });
    }
  }
  for (const spec of plan.networks) {
    if (current.networks.has(spec.name)) continue;
    write(`Creating network ${spec.name}`);
    await connection.call((c) => c.createNetwork, { spec });
  }
  await writeData(connection, 'secret', planned.secrets, current.secrets, write);
  await writeData(connection, 'config', planned.configs, current.configs, write);
  const created: ServiceSpec[] = [];
  const updated: string[] = [];
  for (const spec of plan.services) {
    const stored = current.services.get(spec.name);
    if (stored?.spec === undefined || stored.meta === undefined) {
      write(`Creating service ${spec.name}`);
      await connection.call((c) => c.createService, { spec, noResolveImage: resolveImage === 'never' });
      created.push(spec);
      continue;
    }
    write(`Updating service ${spec.name} (id: ${stored.meta.id})`);
    const next = specForUpdate(spec, stored.spec, resolveImage);
    const { service } = await connection.call((c) => c.updateService, { service: stored.meta.id, version: stored.meta.version, spec: next, noResolveImage: resolveImage === 'never' });
    // As `skiff service update`: only a new spec version starts a rollout to follow.
    if (service !== undefined && service.specVersion !== stored.specVersion) updated.push(stored.meta.id);
  }
  if (planned.detach) return;
  for (const spec of created) await waitForConvergence(connection, spec.name, planned.timeoutMs);
  for (const id of updated) await followUpdate(connection, id, planned.timeoutMs, write);
}
