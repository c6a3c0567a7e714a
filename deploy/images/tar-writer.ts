/**
 * A minimal, deterministic ustar writer for building image layers: directories, regular files and
 * symlinks, in the order given, with the mtime, owner and mode given. Same entries in, same bytes out.
 */

/** One entry of a layer tarball. Paths are relative (`bin/sh`), without a leading or trailing slash. */
export type TarEntry =
  | { kind: 'directory'; path: string; mode: number; uid?: number; gid?: number }
  | { kind: 'file'; path: string; mode: number; content: Buffer; uid?: number; gid?: number }
  | { kind: 'symlink'; path: string; target: string };

const BLOCK_BYTES = 512;
/** ustar `name` field size; longer paths are split into `prefix` (155) + `name` (100). */
const NAME_BYTES = 100;
const PREFIX_BYTES = 155;
/** ustar `size` field holds 11 octal digits. */
const MAX_FILE_BYTES = 8 ** 11 - 1;

function writeString(header: Buffer, offset: number, length: number, value: string, field: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`cannot write tar header: ${field} "${value}" is longer than ${length} bytes`);
  bytes.copy(header, offset);
}

function writeOctal(header: Buffer, offset: number, length: number, value: number, field: string): void {
  const digits = value.toString(8);
  if (digits.length > length - 1) throw new Error(`cannot write tar header: ${field} ${value} does not fit`);
  header.write(digits.padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= NAME_BYTES) return { name: path, prefix: '' };
  for (let index = path.indexOf('/'); index !== -1; index = path.indexOf('/', index + 1)) {
    const prefix = path.slice(0, index);
    const name = path.slice(index + 1);
    if (Buffer.byteLength(prefix) <= PREFIX_BYTES && Buffer.byteLength(name) <= NAME_BYTES) return { name, prefix };
  }
  throw new Error(`cannot write tar header: path "${path}" is too long for ustar`);
}

function header(entry: TarEntry, mtimeSeconds: number): Buffer {
  if (entry.path === '' || entry.path.startsWith('/') || entry.path.endsWith('/') || entry.path.split('/').includes('..')) {
    throw new Error(`cannot write tar header: path "${entry.path}" must be relative, without "..", and not end in "/"`);
  }
  const block = Buffer.alloc(BLOCK_BYTES);
  const path = entry.kind === 'directory' ? `${entry.path}/` : entry.path;
  const { name, prefix } = splitPath(path);
  const mode = entry.kind === 'symlink' ? 0o777 : entry.mode;
  const size = entry.kind === 'file' ? entry.content.length : 0;
  if (size > MAX_FILE_BYTES) throw new Error(`cannot write tar header: file "${entry.path}" is larger than ${MAX_FILE_BYTES} bytes`);
  const uid = entry.kind === 'symlink' ? 0 : (entry.uid ?? 0);
  const gid = entry.kind === 'symlink' ? 0 : (entry.gid ?? 0);
  writeString(block, 0, NAME_BYTES, name, 'name');
  writeOctal(block, 100, 8, mode & 0o7777, 'mode');
  writeOctal(block, 108, 8, uid, 'uid');
  writeOctal(block, 116, 8, gid, 'gid');
  writeOctal(block, 124, 12, size, 'size');
  writeOctal(block, 136, 12, mtimeSeconds, 'mtime');
  block.fill(' ', 148, 156); // checksum is computed with its own field as spaces
  block.write(entry.kind === 'directory' ? '5' : entry.kind === 'symlink' ? '2' : '0', 156, 1, 'ascii');
  if (entry.kind === 'symlink') writeString(block, 157, NAME_BYTES, entry.target, 'linkname');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  writeString(block, 265, 32, uid === 0 ? 'root' : '', 'uname');
  writeString(block, 297, 32, gid === 0 ? 'root' : '', 'gname');
  writeString(block, 345, PREFIX_BYTES, prefix, 'prefix');
  let checksum = 0;
  for (const byte of block) checksum += byte;
  block.write(checksum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return block;
}

/**
 * Serialises `entries` in the given order into an uncompressed tar archive (with the two zero
 * blocks that end it). Every entry gets `mtimeSeconds`; the caller sorts for determinism.
 */
export function writeTar(entries: readonly TarEntry[], mtimeSeconds: number): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(header(entry, mtimeSeconds));
    if (entry.kind === 'file' && entry.content.length > 0) {
      parts.push(entry.content);
      const padding = (BLOCK_BYTES - (entry.content.length % BLOCK_BYTES)) % BLOCK_BYTES;
      if (padding > 0) parts.push(Buffer.alloc(padding));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK_BYTES));
  return Buffer.concat(parts);
}
