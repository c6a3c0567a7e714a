/**
 * Demo images without a network: an OCI image layout holding one gzip layer with the host's
 * static busybox (Debian's busybox-static), a symlink per applet in /bin, a minimal /etc and the
 * caller's files. Output is deterministic: same inputs and same busybox give the same digest.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { MEDIA_TYPE, sha256Digest, tagManifest, writeBlob, type Descriptor } from './oci-layout.js';
import { writeTar, type TarEntry } from './tar-writer.js';

const execFileAsync = promisify(execFile);

/** The static busybox taken from the host (Debian package busybox-static). */
export const HOST_BUSYBOX = '/bin/busybox';
/** Applets the demo images rely on; building fails when the host busybox lacks one. */
export const REQUIRED_APPLETS = ['sh', 'httpd', 'wget', 'hostname', 'cat', 'echo', 'sleep', 'ls', 'ps', 'id', 'nc', 'kill'] as const;
/** Every entry's mtime and the config's `created`: fixed so that builds are reproducible. */
export const FIXED_MTIME_SECONDS = 946_684_800; // 2000-01-01T00:00:00Z
/** How long `skopeo copy` may run before the push is abandoned. */
export const PUSH_TIMEOUT_MS = 120_000;
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What goes into a busybox image besides busybox itself. */
export interface BusyboxImageOptions {
  /** OCI layout directory to write (created if needed; other tags in it are kept). */
  layoutDir: string;
  /** Tag recorded as `org.opencontainers.image.ref.name` in index.json. */
  tag: string;
  /** Extra files by absolute path in the image, e.g. `/www/index.html`; they override defaults. */
  files: Record<string, { content: string; mode: number }>;
  entrypoint: string[];
  cmd: string[];
  /** Extra `NAME=value` entries; a PATH is added unless one is given. */
  env?: string[];
  workingDir?: string;
  /** TCP ports recorded as `ExposedPorts` (`80/tcp`). */
  exposedPorts?: number[];
}

/** The OCI architecture name of this machine (the busybox we copy is built for it). */
export function hostOciArchitecture(): string {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'arm64':
      return 'arm64';
    case 'arm':
      return 'arm';
    case 'ia32':
      return '386';
    default:
      return process.arch;
  }
}

async function busyboxApplets(): Promise<string[]> {
  const { stdout } = await execFileAsync(HOST_BUSYBOX, ['--list']);
  const applets = stdout.split('\n').filter((name) => /^[A-Za-z0-9_.[\]-]+$/.test(name) && name !== 'busybox');
  for (const required of REQUIRED_APPLETS) {
    if (!applets.includes(required)) throw new Error(`cannot build busybox image: ${HOST_BUSYBOX} lacks applet "${required}"`);
  }
  return applets;
}

function normaliseImagePath(path: string): string {
  const relative = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (relative === '' || relative.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new Error(`cannot build busybox image: file path "${path}" is not a clean absolute path`);
  }
  return relative;
}

/** The layer's entries, sorted by path, parents always before children. */
async function layerEntries(files: BusyboxImageOptions['files']): Promise<TarEntry[]> {
  const entries = new Map<string, TarEntry>();
  const directory = (path: string, mode = 0o755): void => {
    entries.set(path, { kind: 'directory', path, mode });
  };
  for (const dir of ['bin', 'dev', 'etc', 'home', 'proc', 'sys', 'usr', 'var', 'www']) directory(dir);
  directory('root', 0o700);
  directory('tmp', 0o1777);
  entries.set('bin/busybox', { kind: 'file', path: 'bin/busybox', mode: 0o755, content: await readFile(HOST_BUSYBOX) });
  for (const applet of await busyboxApplets()) {
    entries.set(`bin/${applet}`, { kind: 'symlink', path: `bin/${applet}`, target: 'busybox' });
  }
  const text = (path: string, content: string, mode = 0o644): void => {
    entries.set(path, { kind: 'file', path, mode, content: Buffer.from(content) });
  };
  text('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  text('etc/group', 'root:x:0:\nnobody:x:65534:\n');
  for (const [path, file] of Object.entries(files)) {
    const relative = normaliseImagePath(path);
    const parts = relative.split('/');
    for (let depth = 1; depth < parts.length; depth += 1) {
      const parent = parts.slice(0, depth).join('/');
      if (entries.get(parent)?.kind !== 'directory') directory(parent);
    }
    text(relative, file.content, file.mode);
  }
  // Byte order, not locale order: stable across machines.
  return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function imageConfig(options: BusyboxImageOptions, diffId: string): Buffer {
  const created = new Date(FIXED_MTIME_SECONDS * 1000).toISOString();
  const env = [...(options.env ?? [])];
  if (!env.some((entry) => entry.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
  const exposedPorts: Record<string, Record<string, never>> = {};
  for (const port of [...(options.exposedPorts ?? [])].sort((a, b) => a - b)) exposedPorts[`${port}/tcp`] = {};
  const config = {
    created,
    architecture: hostOciArchitecture(),
    os: 'linux',
    config: {
      Env: env,
      Entrypoint: options.entrypoint,
      Cmd: options.cmd,
      WorkingDir: options.workingDir ?? '/',
      ...(options.exposedPorts === undefined ? {} : { ExposedPorts: exposedPorts }),
    },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: 'skiff deploy/images buildBusyboxImage' }],
  };
  return Buffer.from(JSON.stringify(config));
}

/**
 * Builds the image into `layoutDir` under `tag` and returns its manifest digest. Reads only the
 * host's busybox; no network. Deterministic for equal inputs.
 */
export async function buildBusyboxImage(options: BusyboxImageOptions): Promise<{ manifestDigest: string }> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(options.tag)) {
    throw new Error(`cannot build busybox image: tag "${options.tag}" is not a valid tag`);
  }
  const tar = writeTar(await layerEntries(options.files), FIXED_MTIME_SECONDS);
  const layer = await writeBlob(options.layoutDir, MEDIA_TYPE.layerGzip, gzipSync(tar, { level: 9 }));
  const config = await writeBlob(options.layoutDir, MEDIA_TYPE.config, imageConfig(options, sha256Digest(tar)));
  const manifestBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.manifest, config, layers: [layer] } satisfies {
      schemaVersion: 2;
      mediaType: string;
      config: Descriptor;
      layers: Descriptor[];
    }),
  );
  const manifest = await writeBlob(options.layoutDir, MEDIA_TYPE.manifest, manifestBytes);
  await tagManifest(options.layoutDir, options.tag, {
    ...manifest,
    platform: { architecture: hostOciArchitecture(), os: 'linux' },
  });
  return { manifestDigest: manifest.digest };
}

/**
 * Copies `oci:layoutDir:tag` to `docker://destination` with skopeo. `insecure` turns TLS
 * verification off (plain-HTTP lab registries); otherwise the registry's certificate is verified.
 */
export async function pushOciLayout(
  layoutDir: string,
  tag: string,
  destination: string,
  options: { insecure: boolean },
): Promise<void> {
  const args = [
    'copy',
    '--quiet',
    `--dest-tls-verify=${options.insecure ? 'false' : 'true'}`,
    `oci:${layoutDir}:${tag}`,
    `docker://${destination}`,
  ];
  try {
    await execFileAsync('skopeo', args, { timeout: PUSH_TIMEOUT_MS });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    const reason = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : String(error);
    throw new Error(`cannot push ${layoutDir}:${tag} to ${destination}: ${reason}`);
  }
}

/** The entrypoint of the demo web image, for `version`. */
/** The demo release that is broken on purpose: it starts, but serves no page, so a check of `/index.html` never passes. */
export const BROKEN_DEMO_VERSION = 'v3';

export function demoWebScript(version: string): string {
  // PID 1 gets no default signal handling, so TERM is trapped here: the trap kills httpd (a child,
  // which does die on TERM) and exits; when PID 1 exits the kernel ends the rest of the namespace.
  // The trap is installed before httpd starts so an early TERM is never lost.
  const page = [
    'cat > /www/index.html <<EOF',
    `<h1>Skiff demo web ${version}</h1>`,
    `<p>image: demo/web:${version}</p>`,
    '<p>host: $(hostname)</p>',
    'EOF',
  ];
  return [
    '#!/bin/sh',
    'trap \'kill -TERM "$httpd_pid" 2>/dev/null; exit 0\' TERM INT',
    ...(version === BROKEN_DEMO_VERSION ? ['rm -f /www/index.html'] : page),
    'httpd -f -v -p 80 -h /www &',
    'httpd_pid=$!',
    'wait "$httpd_pid"',
    '',
  ].join('\n');
}

/**
 * Builds `demo/web:<version>` into `layoutDir` under tag `version`: busybox httpd on port 80
 * serving a page that names the image (`demo/web:<version>`) and the container's hostname; v3
 * serves no page at all (a bad release, for update tests). Stops within a second on SIGTERM even
 * as PID 1.
 */
export async function buildDemoWebImage(layoutDir: string, version: 'v1' | 'v2' | 'v3'): Promise<{ manifestDigest: string }> {
  return buildBusyboxImage({
    layoutDir,
    tag: version,
    files: { '/bin/demo-web': { content: demoWebScript(version), mode: 0o755 } },
    entrypoint: ['/bin/demo-web'],
    cmd: [],
    workingDir: '/www',
    exposedPorts: [80],
  });
}
