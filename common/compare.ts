/**
 * Orders strings by UTF-16 code units, for sorts that only need to be deterministic (addresses,
 * digests, names). Not `localeCompare`: that loads ICU's collation data into the process, about
 * 2.7 MiB of resident memory in a worker's skiffd (issue 7's memory goal; docs/benchmarks.md).
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
