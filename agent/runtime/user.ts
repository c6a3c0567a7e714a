/**
 * Resolves a container `user` string (`name`, `uid`, `name:group`, `uid:gid`, ...) to numeric ids
 * against the rootfs's /etc/passwd and /etc/group, as Docker does. Pure: callers read the files.
 */

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups the user is a member of in /etc/group. */
  additionalGids: number[];
  /** Home directory from /etc/passwd, `/` when unknown. */
  home: string;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Largest id we accept (ids are 32-bit; 2^32-1 is the "no id" value). */
const MAX_ID = 4_294_967_294;

/** Parses /etc/passwd text; malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    const uid = parseId(fields[2] ?? '');
    const gid = parseId(fields[3] ?? '');
    if (fields[0] === undefined || uid === undefined || gid === undefined) continue;
    entries.push({ name: fields[0], uid, gid, home: fields[5] || '/' });
  }
  return entries;
}

/** Parses /etc/group text; malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    const gid = parseId(fields[2] ?? '');
    if (fields[0] === undefined || gid === undefined) continue;
    const members = (fields[3] ?? '').split(',').map((member) => member.trim()).filter((member) => member !== '');
    entries.push({ name: fields[0], gid, members });
  }
  return entries;
}

/**
 * Resolves `user` (empty = root). A numeric uid needs no passwd entry (its gid then defaults to 0);
 * a name must exist. Throws "cannot resolve user ...: ..." for unknown names or bad ids.
 */
export function resolveUser(user: string, passwdText: string | undefined, groupText: string | undefined): ResolvedUser {
  const passwd = parsePasswd(passwdText ?? '');
  const groups = parseGroup(groupText ?? '');
  const [userPart = '', groupPart] = splitOnce(user.trim(), ':');
  if (userPart === '' && (groupPart === undefined || groupPart === '')) {
    const root = passwd.find((entry) => entry.uid === 0);
    return { uid: 0, gid: 0, additionalGids: supplementaryGids(root?.name, 0, groups), home: root?.home ?? '/root' };
  }
  const numericUid = parseId(userPart);
  const entry = numericUid === undefined ? passwd.find((candidate) => candidate.name === userPart) : passwd.find((candidate) => candidate.uid === numericUid);
  if (numericUid === undefined && entry === undefined) {
    throw new Error(`cannot resolve user "${user}": no user "${userPart}" in the image's /etc/passwd`);
  }
  const uid = numericUid ?? entry?.uid ?? 0;
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    const numericGid = parseId(groupPart);
    const group = numericGid === undefined ? groups.find((candidate) => candidate.name === groupPart) : undefined;
    if (numericGid === undefined && group === undefined) {
      throw new Error(`cannot resolve user "${user}": no group "${groupPart}" in the image's /etc/group`);
    }
    gid = numericGid ?? group?.gid ?? 0;
  }
  return { uid, gid, additionalGids: supplementaryGids(entry?.name, gid, groups), home: entry?.home ?? '/' };
}

function supplementaryGids(userName: string | undefined, primaryGid: number, groups: readonly GroupEntry[]): number[] {
  if (userName === undefined) return [];
  const gids = groups.filter((group) => group.members.includes(userName) && group.gid !== primaryGid).map((group) => group.gid);
  return [...new Set(gids)].sort((left, right) => left - right);
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const index = text.indexOf(separator);
  return index < 0 ? [text, undefined] : [text.slice(0, index), text.slice(index + 1)];
}

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value <= MAX_ID ? value : undefined;
}
