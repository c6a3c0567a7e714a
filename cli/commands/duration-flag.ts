/**
 * Flag errors and duration values, apart from service-flags.ts so that skiffd (which parses
 * `--drain-delay`) does not load the service flags and, through them, the scheduler's parsers.
 */
export class FlagError extends Error {}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "5s", "250ms", "1m30s" -> milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const parts = [...value.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== value.trim()) {
    throw new FlagError(`invalid value "${value}" for ${flag}: use a duration such as 5s, 250ms or 1m30s`);
  }
  return Math.round(parts.reduce((total, part) => total + Number(part[1]) * (DURATION_UNITS[part[2] ?? 's'] ?? 1000), 0));
}
