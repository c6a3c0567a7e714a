// The CLI's contexts, as in `docker context`: each names a cluster (its manager addresses) and the
// admin credential used to reach it. Stored in <skiffHome>/config.json; one is current.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { writeFileAtomic } from '../pki/credentials-store.js';

/** One cluster the CLI can talk to. Paths are absolute; managers are `ip:port`. */
export interface ContextEntry {
  managers: string[];
  caCertPath: string;
  certPath: string;
  keyPath: string;
}

/** The whole config file. `current` may name a context that was since removed (then it is ''). */
export interface CliConfig {
  current: string;
  contexts: Record<string, ContextEntry>;
}

/** A loaded context and the name it was found under. */
export interface LoadedContext extends ContextEntry {
  name: string;
}

/** Expected failures of context handling; `code` is stable. */
export class ContextError extends Error {
  constructor(
    readonly code: 'not_found' | 'invalid_config' | 'invalid_request',
    message: string,
  ) {
    super(message);
    this.name = 'ContextError';
  }
}

export const CONFIG_FILE = 'config.json';
const LOCK_FILE = 'config.json.lock';
/** How long a writer waits for another process's lock on config.json before failing. */
export const CONFIG_LOCK_TIMEOUT_MS = 10_000;
const CONFIG_LOCK_POLL_MS = 20;
const CONFIG_MODE = 0o600;
const HOME_MODE = 0o700;
// Context names end up in paths (<home>/certs/<name>): keep them to a safe alphabet.
const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The CLI's home directory: $SKIFF_HOME, else ~/.skiff. */
export function skiffHome(): string {
  const fromEnvironment = process.env['SKIFF_HOME'];
  // Absolute, so the paths stored in contexts are too (a relative one is refused when read back).
  return fromEnvironment !== undefined && fromEnvironment !== '' ? resolve(fromEnvironment) : join(homedir(), '.skiff');
}

/** Where the admin credential of context `name` lives by convention (`skiff init`, `skiff lab up`). */
export function contextCertsDir(name: string): string {
  checkContextName(name);
  return join(skiffHome(), 'certs', name);
}

/** Reads the config file; an absent file is an empty config. Validates the shape once, here. */
export async function readConfig(): Promise<CliConfig> {
  const path = join(skiffHome(), CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return { current: '', contexts: {} };
    throw error;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ContextError('invalid_config', `cannot read ${path}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return parseConfig(raw, path);
}

/** Validates a parsed config.json. Exported for tests. */
export function parseConfig(raw: unknown, path: string): CliConfig {
  if (!isRecord(raw)) throw new ContextError('invalid_config', `cannot read ${path}: top level is not an object`);
  const current = raw['current'] ?? '';
  if (typeof current !== 'string') throw new ContextError('invalid_config', `cannot read ${path}: field "current" is not a string`);
  const rawContexts = raw['contexts'] ?? {};
  if (!isRecord(rawContexts)) throw new ContextError('invalid_config', `cannot read ${path}: field "contexts" is not an object`);
  const contexts: Record<string, ContextEntry> = {};
  for (const [name, value] of Object.entries(rawContexts)) {
    contexts[name] = parseEntry(value, `${path}: contexts.${name}`);
  }
  return { current, contexts };
}

/**
 * Stores context `name` (replacing one of that name) and, with `makeCurrent`, selects it. The file
 * is replaced atomically and is readable by its owner only.
 */
export async function saveContext(name: string, entry: ContextEntry, options: { makeCurrent: boolean }): Promise<void> {
  checkContextName(name);
  const checked = parseEntry(entry, `context ${name}`);
  await withConfigLock(async () => {
    const config = await readConfig();
    config.contexts[name] = checked;
    if (options.makeCurrent) config.current = name;
    await writeConfig(config);
  });
}

/**
 * Loads a context: `name` if given, else $SKIFF_CONTEXT, else the current one. Fails with a
 * message that tells the user how to create one.
 */
export async function loadContext(name?: string): Promise<LoadedContext> {
  const config = await readConfig();
  const fromEnvironment = process.env['SKIFF_CONTEXT'];
  const wanted = name ?? (fromEnvironment !== undefined && fromEnvironment !== '' ? fromEnvironment : config.current);
  const entry = wanted === '' ? undefined : config.contexts[wanted];
  if (entry === undefined) {
    const label = wanted === '' ? '(no current context)' : wanted;
    throw new ContextError('not_found', `cannot find context ${label}: run \`skiff lab up\` or \`skiff init\``);
  }
  return { name: wanted, ...entry };
}

/** Makes context `name` the current one; it must exist. */
export async function useContext(name: string): Promise<void> {
  await withConfigLock(async () => {
    const config = await readConfig();
    if (!(name in config.contexts)) throw new ContextError('not_found', `cannot use context ${name}: there is none of that name (skiff context ls)`);
    await writeConfig({ ...config, current: name });
  });
}

/**
 * Creates context `name` only if no context has that name, under the config lock: `write` (no
 * network calls: other CLIs wait on the lock) writes its credential and returns the entry.
 */
export async function createContext(name: string, write: () => Promise<ContextEntry>, options: { makeCurrent: boolean }): Promise<void> {
  checkContextName(name);
  await withConfigLock(async () => {
    const config = await readConfig();
    if (name in config.contexts) throw new ContextError('invalid_request', `cannot create context ${name}: it exists already (skiff context rm ${name} first)`);
    config.contexts[name] = parseEntry(await write(), `context ${name}`);
    if (options.makeCurrent) config.current = name;
    await writeConfig(config);
  });
}

/** Removes context `name` if present (clearing `current` if it pointed there). Returns whether it existed. */
export async function removeContext(name: string): Promise<boolean> {
  return withConfigLock(async () => {
    const config = await readConfig();
    if (!(name in config.contexts)) return false;
    const contexts = Object.fromEntries(Object.entries(config.contexts).filter(([key]) => key !== name));
    await writeConfig({ current: config.current === name ? '' : config.current, contexts });
    return true;
  });
}

/** Throws unless `name` is a usable context name. */
export function checkContextName(name: string): void {
  if (!CONTEXT_NAME.test(name)) {
    throw new ContextError('invalid_request', `cannot use context name "${name}": it must match ${CONTEXT_NAME.source}`);
  }
}

async function writeConfig(config: CliConfig): Promise<void> {
  const home = skiffHome();
  await writeFileAtomic(join(home, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, CONFIG_MODE);
}

/**
 * Runs a read-modify-write of config.json (or of a context's credential files) under an
 * exclusive lock file, so that two CLIs (say two test labs coming up in parallel) never lose
 * each other's context. A lock whose owner process is gone is taken over.
 */
export async function withConfigLock<T>(work: () => Promise<T>): Promise<T> {
  const home = skiffHome();
  await mkdir(home, { recursive: true, mode: HOME_MODE });
  const lockPath = join(home, LOCK_FILE);
  const deadline = Date.now() + CONFIG_LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', CONFIG_MODE);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
    }
    if (await lockOwnerIsGone(lockPath)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new ContextError('invalid_config', `cannot update ${join(home, CONFIG_FILE)}: ${lockPath} is held by another process`);
    }
    await new Promise((resolve) => setTimeout(resolve, CONFIG_LOCK_POLL_MS));
  }
  try {
    return await work();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function lockOwnerIsGone(lockPath: string): Promise<boolean> {
  const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
  // An empty file is a lock being written right now: not stale.
  if (!Number.isInteger(owner) || owner <= 0) return false;
  try {
    process.kill(owner, 0);
    return false;
  } catch (error) {
    return error instanceof Error && 'code' in error && error.code === 'ESRCH';
  }
}

function parseEntry(value: unknown, where: string): ContextEntry {
  if (!isRecord(value)) throw new ContextError('invalid_config', `cannot read ${where}: not an object`);
  const managers = value['managers'];
  if (!Array.isArray(managers) || managers.length === 0 || !managers.every((item) => typeof item === 'string' && /^.+:\d+$/.test(item))) {
    throw new ContextError('invalid_config', `cannot read ${where}: field "managers" must be a non-empty list of "ip:port"`);
  }
  const paths = ['caCertPath', 'certPath', 'keyPath'] as const;
  const entry: ContextEntry = { managers: managers as string[], caCertPath: '', certPath: '', keyPath: '' };
  for (const field of paths) {
    const path = value[field];
    if (typeof path !== 'string' || !isAbsolute(path)) {
      throw new ContextError('invalid_config', `cannot read ${where}: field "${field}" must be an absolute path`);
    }
    entry[field] = path;
  }
  return entry;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
