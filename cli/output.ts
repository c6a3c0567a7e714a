/** Printing: aligned tables by default, JSON on `--format json`. */

export type OutputFormat = 'table' | 'json';

export function parseFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === 'table') return 'table';
  if (value === 'json') return 'json';
  throw new Error(`cannot use --format "${value}": choose table or json`);
}

/** Prints rows as a table with the given columns (header = column title). */
export function printTable<Row>(rows: readonly Row[], columns: ReadonlyArray<[title: string, value: (row: Row) => string]>): void {
  const cells = [columns.map(([title]) => title), ...rows.map((row) => columns.map(([, value]) => value(row)))];
  const widths = columns.map((_, index) => Math.max(...cells.map((line) => (line[index] ?? '').length)));
  for (const line of cells) {
    process.stdout.write(`${line.map((cell, index) => (index === line.length - 1 ? cell : cell.padEnd((widths[index] ?? 0) + 3))).join('')}\n`);
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
