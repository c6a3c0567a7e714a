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

/** A logger writing to `sink` (stderr by default). */
export function createLogger(base: LogFields = {}, sink: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const floor = envLevel();
  const emit = (level: Level, message: string, fields?: LogFields): void => {
    const component = typeof base.component === 'string' ? base.component : '';
    if (LEVELS[level] < floor && !(level === 'debug' && traced.has(component))) return;
    const record: LogFields = { time: new Date().toISOString(), level, msg: message, ...base, ...fields };
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
