import { describe, expect, it } from 'vitest';
import { resolveUser } from './user.js';

const passwd = 'root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000:app:/home/app:/bin/sh\nbroken:line\nnobody:x:65534:65534::/nonexistent:/bin/false\n';
const group = 'root:x:0:\napp:x:1000:\nweb:x:2000:app,nobody\nlogs:x:3000:app\n';

describe('resolveUser', () => {
  it('user empty resolves to root', () => {
    expect(resolveUser('', passwd, group)).toEqual({ uid: 0, gid: 0, additionalGids: [], home: '/root' });
  });

  it('user name resolves uid, gid, home and supplementary groups', () => {
    expect(resolveUser('app', passwd, group)).toEqual({ uid: 1000, gid: 1000, additionalGids: [2000, 3000], home: '/home/app' });
  });

  it('user numeric uid works with or without a passwd entry', () => {
    expect(resolveUser('1000', passwd, group)).toMatchObject({ uid: 1000, gid: 1000, home: '/home/app' });
    expect(resolveUser('4242', passwd, group)).toEqual({ uid: 4242, gid: 0, additionalGids: [], home: '/' });
    expect(resolveUser('4242', undefined, undefined)).toEqual({ uid: 4242, gid: 0, additionalGids: [], home: '/' });
  });

  it('user with a group part takes the group by name or number', () => {
    expect(resolveUser('app:web', passwd, group)).toMatchObject({ uid: 1000, gid: 2000, additionalGids: [3000] });
    expect(resolveUser('1000:5', passwd, group)).toMatchObject({ uid: 1000, gid: 5 });
    expect(resolveUser('nobody:logs', passwd, group)).toMatchObject({ uid: 65534, gid: 3000, additionalGids: [2000] });
  });

  it('user unknown names are refused', () => {
    expect(() => resolveUser('ghost', passwd, group)).toThrow(/cannot resolve user "ghost": no user "ghost"/);
    expect(() => resolveUser('app:ghosts', passwd, group)).toThrow(/no group "ghosts"/);
    expect(() => resolveUser('app', undefined, undefined)).toThrow(/no user "app"/);
  });
});
