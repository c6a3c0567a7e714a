/**
 * Structured JSON logs, one object per line on stderr, with a child logger per component.
 * `SKIFF_LOG_LEVEL` (debug|info|warn|error, default info) sets the floor; `SKIFF_TRACE` is a
 * comma list of components whose debug lines are always shown (e.g. `SKIFF_TRACE=dispatcher`).
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

function envLevel(): number {
  const name = (process.env.SKIFF_LOG_LEVEL ?? 'info') as Level;
  return LEVELS[name] ?? LEVELS.info;
}

const traced = new Set((process.env.SKIFF_TRACE ?? '').split(',').map((part) => part.trim()).filter(Boolean));

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

/**
 * `new Date(ms).toISOString()` by arithmetic (days to civil date, H. Hinnant's algorithm). Not
 * Date's own: in Node 20, toISOString initializes V8's local-time cache, which loads ICU's time
 * zone data, about 1 MiB of resident memory in every skiffd (issue 7's worker memory goal).
 */
export function isoTime(ms: number): string {
  const days = Math.floor(ms / 86_400_000);
  const msOfDay = ms - days * 86_400_000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const time = `${pad(Math.floor(msOfDay / 3_600_000))}:${pad(Math.floor(msOfDay / 60_000) % 60)}:${pad(Math.floor(msOfDay / 1000) % 60)}.${pad(msOfDay % 1000, 3)}`;
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}T${time}Z`;
}

/** A logger writing to `sink` (stderr by default). */
export function createLogger(base: LogFields = {}, sink: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const floor = envLevel();
  const emit = (level: Level, message: string, fields?: LogFields): void => {
    const component = typeof base.component === 'string' ? base.component : '';
    if (LEVELS[level] < floor && !(level === 'debug' && traced.has(component))) return;
    const record: LogFields = { time: isoTime(Date.now()), level, msg: message, ...base, ...fields };
    for (const [key, value] of Object.entries(record)) if (value instanceof Error) record[key] = value.message;
    sink(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    child: (fields) => createLogger({ ...base, ...fields }, sink),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger({}, () => undefined);
