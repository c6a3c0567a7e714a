/**
 * Integer flags for the benchmarks (`--runs 3`, `--replicas=50`). Pure: no I/O. Errors name the
 * flag and the cause, and list the flags the benchmark knows.
 */

/** One integer flag: its default and the inclusive range it accepts. */
export interface IntegerFlag {
  default: number;
  min: number;
  max: number;
}

/**
 * Parses `--name N` / `--name=N` for every flag in `spec` (names without the dashes); returns every
 * flag's value (the default when absent). Throws "cannot parse ..." on an unknown argument, a
 * missing value, a non-integer or a value out of range.
 */
export function parseIntegerFlags<Name extends string>(argv: readonly string[], spec: Record<Name, IntegerFlag>, usage: string): Record<Name, number> {
  const names = Object.keys(spec) as Name[];
  const values = Object.fromEntries(names.map((name) => [name, spec[name].default])) as Record<Name, number>;
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index] ?? '';
    const match = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(argument);
    const name = names.find((candidate) => candidate === match?.[1]);
    if (match === null || name === undefined) throw new Error(`cannot parse arguments: unknown argument ${JSON.stringify(argument)} (usage: ${usage})`);
    const text = match[2] ?? argv[(index += 1)];
    const { min, max } = spec[name];
    const value = Number(text);
    if (text === undefined || text.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
      throw new Error(`cannot parse --${name}: expected an integer in ${min}..${max}, got ${JSON.stringify(text ?? '')}`);
    }
    values[name] = value;
  }
  return values;
}
