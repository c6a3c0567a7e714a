import { describe, expect, it } from 'vitest';
import { parseRegistryAuth } from './registry-auth-file.js';

describe('registry auth file', () => {
  it('reads Docker config auths: base64 auth or username and password', () => {
    const text = JSON.stringify({ auths: { 'reg.example:5000': { auth: Buffer.from('alice:pa:ss').toString('base64') }, 'other.example': { username: 'bob', password: 'pw' } } });
    expect(parseRegistryAuth(text, 'auth.json')).toEqual({ 'reg.example:5000': { username: 'alice', password: 'pa:ss' }, 'other.example': { username: 'bob', password: 'pw' } });
  });

  it('refuses a broken file naming the registry and field', () => {
    expect(() => parseRegistryAuth('{', 'a.json')).toThrow('cannot read registry auth file a.json: it is not valid JSON');
    expect(() => parseRegistryAuth('{}', 'a.json')).toThrow('it has no "auths" object');
    expect(() => parseRegistryAuth(JSON.stringify({ auths: { r: { auth: Buffer.from('nocolon').toString('base64') } } }), 'a.json')).toThrow('auths["r"] .auth is not base64 of "user:password"');
    expect(() => parseRegistryAuth(JSON.stringify({ auths: { r: {} } }), 'a.json')).toThrow('auths["r"] has neither "auth" nor "username" and "password"');
  });
});
