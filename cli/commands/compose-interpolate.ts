/**
 * Compose's variable interpolation in every string value of a file (keys are left alone):
 * `$$` is a literal `$`; `$VAR` and `${VAR}` take the variable, an unset one being an empty string
 * with a warning; `${VAR:-default}` / `${VAR-default}` default when unset or empty / unset;
 * `${VAR:?message}` / `${VAR?message}` refuse the file; `${VAR:+other}` / `${VAR+other}` give
 * `other` when set. Defaults may hold further variables. Any other `$` refuses the file, naming the
 * key (Compose's rule: write `$$` for a literal `$`). Pure: the variables come from `lookup`.
 */
import { at, isMap, refuse } from './compose-values.js';

export type Lookup = (name: string) => string | undefined;

export interface Interpolated {
  value: unknown;
  /** One line per unset variable used without a default, in Compose's words. */
  warnings: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const BRACED = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/;

/** The value with every string in it interpolated. */
export function interpolate(value: unknown, lookup: Lookup): Interpolated {
  const unset = new Set<string>();
  const walk = (item: unknown, path: string): unknown => {
    if (typeof item === 'string') return interpolateText(item, path, lookup, unset);
    if (Array.isArray(item)) return item.map((entry, index) => walk(entry, at(path, index)));
    if (isMap(item)) return Object.fromEntries(Object.entries(item).map(([key, entry]) => [key, walk(entry, at(path, key))]));
    return item;
  };
  const result = walk(value, '');
  return { value: result, warnings: [...unset].map((name) => `The "${name}" variable is not set. Defaulting to a blank string.`) };
}

/** The index of the `}` closing the `{` just before `from`, or -1. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let index = from; index < text.length; index += 1) {
    if (text[index] === '{') depth += 1;
    else if (text[index] === '}') depth -= 1;
    if (depth === 0) return index;
  }
  return -1;
}

function interpolateText(text: string, path: string, lookup: Lookup, unset: Set<string>): string {
  const invalid = (): Error => refuse(path, `invalid interpolation format in "${text}" (write $$ for a literal $)`);
  let result = '';
  let index = 0;
  while (index < text.length) {
    const char = text[index];
    if (char !== '$') {
      result += char;
      index += 1;
      continue;
    }
    const next = text[index + 1];
    if (next === '$') {
      result += '$';
      index += 2;
    } else if (next === '{') {
      const end = closingBrace(text, index + 2);
      if (end < 0) throw invalid();
      result += expandBraced(text.slice(index + 2, end), path, lookup, unset, invalid);
      index = end + 1;
    } else {
      const name = NAME.exec(text.slice(index + 1))?.[0];
      if (name === undefined) throw invalid();
      result += variable(name, lookup, unset);
      index += 1 + name.length;
    }
  }
  return result;
}

function variable(name: string, lookup: Lookup, unset: Set<string>): string {
  const value = lookup(name);
  if (value === undefined) unset.add(name);
  return value ?? '';
}

/** The text of `${body}`. */
function expandBraced(body: string, path: string, lookup: Lookup, unset: Set<string>, invalid: () => Error): string {
  const match = BRACED.exec(body);
  if (match === null) throw invalid();
  const name = match[1] ?? '';
  const operator = match[2];
  const argument = (): string => interpolateText(match[3] ?? '', path, lookup, unset);
  if (operator === undefined) return variable(name, lookup, unset);
  const value = lookup(name);
  // With ':' an empty value counts as unset.
  const set = operator.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
  switch (operator.slice(-1)) {
    case '-':
      return set ? (value ?? '') : argument();
    case '+':
      return set ? argument() : '';
    case '?': {
      if (set) return value ?? '';
      const message = argument();
      throw refuse(path, `required variable ${name} is missing a value${message === '' ? '' : `: ${message}`}`);
    }
    default:
      throw invalid();
  }
}
