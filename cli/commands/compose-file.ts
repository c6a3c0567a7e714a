/**
 * From the texts of Compose files to one document: YAML parsed (YAML 1.2 with merge keys, and Go's
 * leading-zero octal integers, `mode: 0440`, as Compose reads them), each file interpolated, then
 * the files merged in order. Pure: the caller reads the files and the environment.
 */
import { parseDocument, type ScalarTag } from 'yaml';
import { interpolate, type Lookup } from './compose-interpolate.js';
import { mergeComposeFiles } from './compose-merge.js';
import { ComposeError, isMap } from './compose-values.js';

/** Most aliases one file may expand (YAML's "billion laughs"). */
const MAX_YAML_ALIASES = 100;

/** `0440` is octal, as in Go's YAML (Compose's); YAML 1.2 alone would read 440. */
const GO_OCTAL: ScalarTag = {
  identify: (value) => typeof value === 'number',
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^0[0-7]+$/,
  resolve: (source) => parseInt(source, 8),
};

export interface ComposeSource {
  /** The file name as the user gave it (`-` for stdin), for messages. */
  name: string;
  text: string;
}

/** One file's top-level mapping; a YAML error is refused with the file name and its position. */
export function parseComposeText(source: ComposeSource): Record<string, unknown> {
  const document = parseDocument(source.text, { customTags: (tags) => [GO_OCTAL, ...tags], merge: true });
  const error = document.errors[0];
  if (error !== undefined) throw new ComposeError(`${source.name}: ${error.message.split('\n')[0] ?? error.message}`);
  const value: unknown = document.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  if (!isMap(value)) throw new ComposeError(`${source.name}: a Compose file must be a mapping (services:, networks:, ...)`);
  return value;
}

/** The files parsed, interpolated with `lookup` and merged in order; warnings name unset variables, once each. */
export function loadComposeFiles(sources: readonly ComposeSource[], lookup: Lookup): { document: unknown; warnings: string[] } {
  const warnings = new Set<string>();
  const documents = sources.map((source) => {
    const parsed = parseComposeText(source);
    let interpolated: ReturnType<typeof interpolate>;
    try {
      interpolated = interpolate(parsed, lookup);
    } catch (error) {
      // The merged file has no lines of its own: name the file the value came from.
      if (error instanceof ComposeError) throw new ComposeError(`${source.name}: ${error.message}`);
      throw error;
    }
    for (const warning of interpolated.warnings) warnings.add(warning);
    return interpolated.value;
  });
  return { document: mergeComposeFiles(documents), warnings: [...warnings] };
}
