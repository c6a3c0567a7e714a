/**
 * Human-readable figures shared by the CLI and the node's messages (pure).
 */

/** Docker's human sizes: 1000-based, three significant digits ("4.26MB"). */
export function formatSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : Number(value.toPrecision(3))}${units[unit]}`;
}
