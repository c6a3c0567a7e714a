/**
 * Reading values out of a parsed Compose file: each reader checks one value's type and names its
 * path (`services.web.deploy.replicas`) when it refuses it. Pure: no I/O.
 *
 * Interpolation turns every `${VAR}` into text, so numbers and booleans may arrive as strings
 * ("3", "true"); the readers take both, as Compose does.
 */
import { CliError } from '../cli-error.js';
import { FlagError } from './duration-flag.js';

/** A refused Compose file. The message starts with the path of the offending key. */
export class ComposeError extends CliError {}

export type ComposeMap = Record<string, unknown>;

/** `path: problem`, as every refusal reads. */
export function refuse(path: string, problem: string): ComposeError {
  return new ComposeError(`${path}: ${problem}`);
}

/** The path of `key` under `path` (the root has none). */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/**
 * Runs `parse` (one of the `service create` flag parsers, given the path as its flag name) and
 * turns its FlagError into a ComposeError, so that every refusal of a file is of one type.
 */
export function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof FlagError) throw new ComposeError(error.message);
    throw error;
  }
}

export function isMap(value: unknown): value is ComposeMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A mapping; YAML's empty value (`front:`) is an empty one. */
export function mapping(value: unknown, path: string): ComposeMap {
  if (value === null || value === undefined) return {};
  if (!isMap(value)) throw refuse(path, 'must be a mapping');
  return value;
}

/**
 * Refuses any key of `map` outside `supported`, naming the first one. Keys starting with `x-` are
 * Compose extensions, ignored where `extensions` allows them (top level and services).
 */
export function onlyKeys(map: ComposeMap, path: string, supported: readonly string[], extensions = false): void {
  for (const key of Object.keys(map)) {
    if (supported.includes(key) || (extensions && key.startsWith('x-'))) continue;
    throw refuse(at(path, key), 'not supported by skiff stack deploy');
  }
}

/** A string; a number is taken as its decimal text (`user: 1000`). */
export function text(value: unknown, path: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw refuse(path, 'must be a string');
}

/** A scalar as text, for environment and label values (`DEBUG: true` is "true"). */
export function scalarText(value: unknown, path: string): string {
  if (typeof value === 'boolean') return String(value);
  return text(value, path);
}

export function boolean(value: unknown, path: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value.trim())) return value.trim().toLowerCase() === 'true';
  throw refuse(path, 'must be true or false');
}

/** A non-negative integer, as a number or as its digits. */
export function count(value: unknown, path: string): number {
  const digits = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  if (!/^\d+$/.test(digits) || !Number.isSafeInteger(Number(digits))) throw refuse(path, 'must be a non-negative integer');
  return Number(digits);
}

/** A number or its text, as text for the flag parsers (`cpus: 0.5`, `memory: 512M`). */
export function numberText(value: unknown, path: string): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string') return value.trim();
  throw refuse(path, 'must be a number or a string');
}

export function list(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw refuse(path, 'must be a list');
  return value;
}

/** A list of strings (numbers taken as text). */
export function stringList(value: unknown, path: string): string[] {
  return list(value, path).map((item, index) => text(item, at(path, index)));
}

/**
 * Compose's "list or mapping" of KEY=VALUE entries (environment, labels, sysctls): `["A=1", "B"]`
 * or `{A: 1, B: null}`. A key without a value maps to undefined.
 */
export function keyValues(value: unknown, path: string): Map<string, string | undefined> {
  const result = new Map<string, string | undefined>();
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      const entry = text(item, at(path, index));
      const equals = entry.indexOf('=');
      const key = equals < 0 ? entry : entry.slice(0, equals);
      if (key.trim() === '') throw refuse(at(path, index), `"${entry}" must be KEY=VALUE`);
      result.set(key, equals < 0 ? undefined : entry.slice(equals + 1));
    });
    return result;
  }
  if (!isMap(value)) throw refuse(path, 'must be a list of KEY=VALUE or a mapping');
  for (const [key, item] of Object.entries(value)) result.set(key, item === null ? undefined : scalarText(item, at(path, key)));
  return result;
}

/** Labels: a key without a value is an empty label, as in Docker. */
export function labels(value: unknown, path: string): Record<string, string> {
  return Object.fromEntries([...keyValues(value, path)].map(([key, item]) => [key, item ?? '']));
}

/** A string or a list of strings (`test: curl -f x` or `test: [CMD, curl, -f, x]`), as a list or as one text. */
export function textOrList(value: unknown, path: string): { text: string } | { list: string[] } {
  if (typeof value === 'string') return { text: value };
  if (Array.isArray(value)) return { list: stringList(value, path) };
  throw refuse(path, 'must be a string or a list of strings');
}
