/**
 * Merging Compose files given in order (`-c base.yml -c prod.yml`), by Compose's rules: mappings
 * merge key by key, a later scalar replaces an earlier one; `command`, `entrypoint` and
 * `healthcheck.test` are replaced whole; KEY=VALUE collections (environment, labels, sysctls)
 * merge by key whether written as lists or mappings; a service's `networks` merge by network;
 * `ports` append (an identical entry once); `volumes`, `secrets` and `configs` merge by their
 * target; other lists append their new entries. A value of another type than the earlier one
 * replaces it (the whole result is validated afterwards). Pure.
 */
import { isMap, type ComposeMap } from './compose-values.js';

/** Service keys that a later file replaces rather than merges. */
const REPLACED = new Set(['command', 'entrypoint']);
/** Service (and deploy) keys holding KEY=VALUE entries, as a list or a mapping. */
const KEY_VALUES = new Set(['environment', 'labels', 'sysctls']);
/** Service keys whose list entries are unique by a key of their own. */
const KEYED_LISTS: Record<string, (entry: unknown) => string> = {
  volumes: volumeTarget,
  secrets: (entry) => fileReferenceKey(entry),
  configs: (entry) => fileReferenceKey(entry),
};

/** `files` merged in order, later ones overriding. */
export function mergeComposeFiles(files: readonly unknown[]): unknown {
  return files.reduce((merged, file) => mergeValue(merged, file, []));
}

function mergeValue(base: unknown, override: unknown, path: readonly string[]): unknown {
  if (override === undefined) return base;
  // A service key: path is ['services', NAME, KEY] or ['services', NAME, 'deploy', KEY].
  const inService = path[0] === 'services' && path.length >= 3;
  const key = path[path.length - 1] ?? '';
  if (inService && path.length === 3 && REPLACED.has(key)) return override;
  if (inService && key === 'test' && path[path.length - 2] === 'healthcheck') return override;
  if (inService && KEY_VALUES.has(key) && (path.length === 3 || (path.length === 4 && path[2] === 'deploy'))) {
    const merged = mergeKeyValues(base, override);
    if (merged !== undefined) return merged;
  }
  if (inService && path.length === 3 && key === 'networks') {
    return mergeValue(networksAsMap(base), networksAsMap(override), [...path, '*']);
  }
  if (Array.isArray(base) && Array.isArray(override)) {
    const keyOf = inService && path.length === 3 ? KEYED_LISTS[key] : undefined;
    return keyOf === undefined ? appendNew(base, override) : mergeKeyed(base, override, keyOf);
  }
  if (isMap(base) && isMap(override)) {
    const result: ComposeMap = { ...base };
    for (const [entry, value] of Object.entries(override)) result[entry] = mergeValue(base[entry], value, [...path, entry]);
    return result;
  }
  return override;
}

/** Later entries that are not there already, after the earlier ones. */
function appendNew(base: readonly unknown[], override: readonly unknown[]): unknown[] {
  const seen = new Set(base.map((entry) => JSON.stringify(entry)));
  return [...base, ...override.filter((entry) => !seen.has(JSON.stringify(entry)))];
}

/** Entries keyed by `keyOf`: a later entry replaces the earlier one with its key, in its place. */
function mergeKeyed(base: readonly unknown[], override: readonly unknown[], keyOf: (entry: unknown) => string): unknown[] {
  const result = [...base];
  for (const entry of override) {
    const index = result.findIndex((earlier) => keyOf(earlier) === keyOf(entry));
    if (index < 0) result.push(entry);
    else result[index] = entry;
  }
  return result;
}

/** KEY=VALUE entries as a mapping (a bare KEY maps to null), or undefined when not of that shape. */
function keyValueMap(value: unknown): ComposeMap | undefined {
  if (isMap(value)) return value;
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) return undefined;
  return Object.fromEntries(value.map((entry: string) => {
    const equals = entry.indexOf('=');
    return equals < 0 ? [entry, null] : [entry.slice(0, equals), entry.slice(equals + 1)];
  }));
}

function mergeKeyValues(base: unknown, override: unknown): ComposeMap | undefined {
  const earlier = base === undefined ? {} : keyValueMap(base);
  const later = keyValueMap(override);
  return earlier === undefined || later === undefined ? undefined : { ...earlier, ...later };
}

/** A service's networks as a mapping (the list form names networks without settings). */
function networksAsMap(value: unknown): unknown {
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) return value;
  return Object.fromEntries(value.map((name: string) => [name, null]));
}

/** A volume entry's container path: `SOURCE:TARGET[:MODE]`, `TARGET`, or the long form's target. */
function volumeTarget(entry: unknown): string {
  if (isMap(entry)) return String(entry['target'] ?? '');
  const parts = String(entry).split(':');
  return (parts.length === 1 ? parts[0] : parts[1]) ?? '';
}

/** A secret or config reference's file: its target, else its source. */
function fileReferenceKey(entry: unknown): string {
  if (isMap(entry)) return String(entry['target'] ?? entry['source'] ?? '');
  return String(entry);
}
