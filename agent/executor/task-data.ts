/**
 * The secrets and configs this node holds, in memory only: never written to any file, never
 * logged. The dispatcher sends each one once per session, in the message that brings the first
 * task using it (or an earlier one), so the store is emptied when a new session starts and
 * refilled by its assignments; it holds at most what the node's tasks used in one session.
 */
import type { Config, Secret, Task } from '../../proto/skiff/v1/objects.js';
import type { ConfigReference, SecretReference } from '../../proto/skiff/v1/specs.js';
import type { ContainerFile } from '../runtime/types.js';

/** Where secrets appear inside a container (as on managers). */
export const SECRETS_DIR = '/run/secrets';
/** File mode of a secret or config whose reference gives none. */
export const DEFAULT_FILE_MODE = 0o444;

/** A task's files, or why this node cannot make them. */
export type TaskFiles = { ok: true; files: ContainerFile[] } | { ok: false; error: string };

/** The path of a secret inside the container: /run/secrets/<target, default the secret's name>. */
export function secretPath(reference: SecretReference): string {
  return `${SECRETS_DIR}/${reference.target === '' ? reference.secretName : reference.target}`;
}

/** The path of a config inside the container: its target, default /<the config's name>. */
export function configPath(reference: ConfigReference): string {
  return reference.target === '' ? `/${reference.configName}` : reference.target;
}

/** True when the task mounts any secret or config. */
export function usesData(task: Task): boolean {
  const container = task.spec?.container;
  return container !== undefined && (container.secrets.length > 0 || container.configs.length > 0);
}

export class TaskDataStore {
  private readonly secrets = new Map<string, Uint8Array>();
  private readonly configs = new Map<string, Uint8Array>();

  /** A new session starts: it sends again whatever its tasks use. */
  clear(): void {
    this.secrets.clear();
    this.configs.clear();
  }

  add(secrets: readonly Secret[], configs: readonly Config[]): void {
    for (const secret of secrets) if (secret.meta !== undefined && secret.spec !== undefined) this.secrets.set(secret.meta.id, secret.spec.data);
    for (const config of configs) if (config.meta !== undefined && config.spec !== undefined) this.configs.set(config.meta.id, config.spec.data);
  }

  /** The files `task` mounts, or an error naming the first secret or config this node was not sent. */
  filesFor(task: Task): TaskFiles {
    const container = task.spec?.container;
    const files: ContainerFile[] = [];
    for (const reference of container?.secrets ?? []) {
      const data = this.secrets.get(reference.secretId);
      if (data === undefined) return { ok: false, error: `cannot mount secret "${reference.secretName}" (${reference.secretId}): this node was not sent its data` };
      files.push({ containerPath: secretPath(reference), data, uid: reference.uid, gid: reference.gid, mode: reference.mode || DEFAULT_FILE_MODE });
    }
    for (const reference of container?.configs ?? []) {
      const data = this.configs.get(reference.configId);
      if (data === undefined) return { ok: false, error: `cannot mount config "${reference.configName}" (${reference.configId}): this node was not sent its data` };
      files.push({ containerPath: configPath(reference), data, uid: reference.uid, gid: reference.gid, mode: reference.mode || DEFAULT_FILE_MODE });
    }
    return { ok: true, files };
  }

  /** How many secrets and configs are held (for tests and metrics; never their data). */
  get size(): { secrets: number; configs: number } {
    return { secrets: this.secrets.size, configs: this.configs.size };
  }
}
