/**
 * Name rules of services, networks, secrets and configs (Swarm's), shared by the manager, which
 * checks every spec at the API edge, and the CLI, which checks a whole stack before its first write
 * so that a refused Compose file creates nothing. Pure: each returns a problem text, or undefined.
 */

/**
 * One label of a name the embedded DNS answers: RFC 1123's letters, digits and '-', plus '_'
 * inside as Swarm allows (a stack's services are `STACK_SERVICE`, and Compose keys such as
 * `my_db` become aliases). A service name is one label, so that it resolves on its networks.
 */
export const NAME_LABEL = /^[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$/;
const NETWORK_NAME = /^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?$/;
/** Longest secret or config name (Docker's). */
export const MAX_DATA_NAME_LENGTH = 64;
/** Docker's name rule for secrets and configs. */
const DATA_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Undefined when `name` is a valid service name, else why not (the caller names the field). */
export function serviceNameProblem(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  return NAME_LABEL.test(name) ? undefined : "must be 1-63 letters, digits, '-' or '_', starting and ending with a letter or digit";
}

/** Undefined when `name` is a valid network name, else why not. */
export function networkNameProblem(name: string): string | undefined {
  return NETWORK_NAME.test(name) ? undefined : "must be 1-63 letters, digits, '_', '.' or '-', starting and ending with a letter or digit";
}

/** Undefined when `name` is a valid secret or config name, else why not. */
export function dataNameProblem(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  if (name.length > MAX_DATA_NAME_LENGTH) return `is longer than ${MAX_DATA_NAME_LENGTH} characters`;
  if (!DATA_NAME.test(name)) return "must start with a letter or digit and contain only letters, digits, '_', '.' and '-'";
  return undefined;
}
