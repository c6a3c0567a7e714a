/**
 * Image references, parsed like Docker's: `[registry/]repository[:tag][@sha256:<hex>]`. The first
 * path component is a registry only when it looks like a host (has a `.` or `:`, or is
 * `localhost`); otherwise the default registry applies. Without tag or digest the tag is `latest`.
 */
import { ImageError } from './types.js';

/** A parsed reference. Exactly what a pull needs; `normalized` is its stable spelling. */
export interface ImageReference {
  /** `host[:port]` as written (or the default registry). */
  registry: string;
  /** Path in the registry, e.g. `demo/web`. */
  repository: string;
  /** Tag, when pulled by tag (`latest` if neither tag nor digest was given). */
  tag?: string;
  /** `sha256:<hex>` when pulled by digest; takes precedence over the tag. */
  digest?: string;
  /** `registry/repository@digest` when a digest is given, else `registry/repository:tag`. */
  normalized: string;
}

/** Docker's limit on the whole repository name. */
export const MAX_REPOSITORY_NAME_LENGTH = 255;
const DEFAULT_TAG = 'latest';
const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
const PATH_COMPONENT_PATTERN = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_PATTERN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

function invalid(reference: string, reason: string): ImageError {
  return new ImageError('invalid_reference', `cannot parse image reference "${reference}": ${reason}`);
}

function looksLikeRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/**
 * Parses `reference` against `defaultRegistry`. Throws `ImageError('invalid_reference')` naming
 * the part that is wrong. Docker Hub's `library/` prefix is added for one-component names when the
 * registry is `docker.io`.
 */
export function parseReference(reference: string, defaultRegistry: string): ImageReference {
  if (reference === '') throw invalid(reference, 'reference is empty');
  if (reference !== reference.trim()) throw invalid(reference, 'reference has surrounding whitespace');
  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digest.startsWith('sha256:')) throw invalid(reference, `digest "${digest}" must use sha256`);
    if (!DIGEST_PATTERN.test(digest)) throw invalid(reference, `digest "${digest}" is not sha256 followed by 64 lowercase hex digits`);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG_PATTERN.test(tag)) throw invalid(reference, `tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  const slash = rest.indexOf('/');
  let registry = defaultRegistry;
  let repository = rest;
  if (slash !== -1 && looksLikeRegistry(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
  }
  if (!HOST_PATTERN.test(registry)) throw invalid(reference, `registry "${registry}" is not a host[:port]`);
  if (repository === '') throw invalid(reference, 'repository name is empty');
  if (repository !== repository.toLowerCase()) throw invalid(reference, `repository "${repository}" must be lowercase`);
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT_PATTERN.test(component)) {
      throw invalid(reference, `repository component "${component}" must be lowercase letters and digits separated by ".", "_", "__" or "-"`);
    }
  }
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (registry.length + 1 + repository.length > MAX_REPOSITORY_NAME_LENGTH) {
    throw invalid(reference, `name is longer than ${MAX_REPOSITORY_NAME_LENGTH} characters`);
  }
  if (digest !== undefined) {
    return { registry, repository, ...(tag === undefined ? {} : { tag }), digest, normalized: `${registry}/${repository}@${digest}` };
  }
  const finalTag = tag ?? DEFAULT_TAG;
  return { registry, repository, tag: finalTag, normalized: `${registry}/${repository}:${finalTag}` };
}
