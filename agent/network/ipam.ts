/**
 * Address allocation on the host bridge, one file per taken address (named by the address,
 * holding the container id) in `dir`, like CNI's host-local. Creating a file with O_EXCL is the
 * atomic claim, so two processes on the same state directory never hand out one address twice.
 * Allocation starts after the last handed-out address so a freed address is not reused at once.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErrno, readDirIfExists, readTextIfExists, writeFileAtomic } from '../runtime/fs-util.js';
import { containerAddressRange, containsAddress, formatAddress, parseAddress, type Ipv4Subnet } from './subnet.js';

const LAST_RESERVED_FILE = 'last_reserved';

export class FileIpam {
  constructor(
    readonly dir: string,
    readonly subnet: Ipv4Subnet,
  ) {}

  /** Claims a free address for containerId, or returns the one it already holds. */
  async allocate(containerId: string): Promise<string> {
    await fs.mkdir(this.dir, { recursive: true });
    const existing = await this.addressesOf(containerId);
    if (existing[0] !== undefined) return existing[0];
    const { first, last } = containerAddressRange(this.subnet);
    const size = last - first + 1;
    const previous = await this.lastReserved();
    const start = previous === undefined || previous < first || previous > last ? first : previous + 1;
    for (let offset = 0; offset < size; offset += 1) {
      const candidate = first + ((start - first + offset) % size);
      const address = formatAddress(candidate);
      try {
        await fs.writeFile(path.join(this.dir, address), containerId, { flag: 'wx' });
      } catch (error) {
        if (isErrno(error, 'EEXIST')) continue;
        throw error;
      }
      await writeFileAtomic(path.join(this.dir, LAST_RESERVED_FILE), address);
      return address;
    }
    throw new Error(`cannot allocate an address for ${containerId}: all ${size} addresses of the bridge subnet are taken`);
  }

  /** Frees every address containerId holds. Idempotent. */
  async release(containerId: string): Promise<void> {
    for (const address of await this.addressesOf(containerId)) {
      await fs.rm(path.join(this.dir, address), { force: true });
    }
  }

  /** Addresses held by containerId (normally zero or one). */
  async addressesOf(containerId: string): Promise<string[]> {
    const held: string[] = [];
    for (const [address, owner] of await this.allocations()) if (owner === containerId) held.push(address);
    return held;
  }

  /** address -> container id for every claim in the directory. */
  async allocations(): Promise<Map<string, string>> {
    const result = new Map<string, string>();
    for (const name of await readDirIfExists(this.dir)) {
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(name)) continue;
      const owner = await readTextIfExists(path.join(this.dir, name));
      if (owner !== undefined) result.set(name, owner.trim());
    }
    return result;
  }

  private async lastReserved(): Promise<number | undefined> {
    const text = (await readTextIfExists(path.join(this.dir, LAST_RESERVED_FILE)))?.trim();
    if (text === undefined || text === '') return undefined;
    try {
      const value = parseAddress(text);
      return containsAddress(this.subnet, value) ? value : undefined;
    } catch {
      return undefined;
    }
  }
}
