import { describe, expect, it } from 'vitest';
import { constraintMet, parseConstraint, parsePreference } from './constraint.js';
import { node } from './testing/fixtures.js';

function parsed(text: string) {
  const result = parseConstraint(text);
  if (!result.ok) throw new Error(result.error);
  return result.value;
}

describe('constraint', () => {
  it('parseConstraint reads every attribute with == and != and canonicalises spacing', () => {
    expect(parsed(' node.labels.zone == b ')).toMatchObject({ attribute: { kind: 'label', key: 'zone' }, operator: '==', value: 'b', text: 'node.labels.zone==b' });
    expect(parsed('node.role!=manager')).toMatchObject({ attribute: { kind: 'role' }, operator: '!=', value: 'manager', text: 'node.role!=manager' });
    for (const [text, kind] of [['node.id==x', 'id'], ['node.hostname==h', 'hostname'], ['node.platform.os==linux', 'os'], ['node.platform.arch==aarch64', 'arch']] as const) {
      expect(parsed(text).attribute.kind).toBe(kind);
    }
    expect(parsed('node.labels.com.example/tier==front').attribute).toMatchObject({ kind: 'label', key: 'com.example/tier' });
  });

  it('parseConstraint gives a clear error for each malformed constraint', () => {
    const error = (text: string) => {
      const result = parseConstraint(text);
      return result.ok ? 'accepted' : result.error;
    };
    expect(error('node.labels.zone=b')).toBe('constraint "node.labels.zone=b" must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE');
    expect(error('zone')).toBe('constraint "zone" must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE');
    expect(error('node.name==a')).toBe('constraint "node.name==a": unknown attribute "node.name": use node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.KEY');
    expect(error('node.labels.==a')).toBe(`constraint "node.labels.==a": label key "" must be letters, digits, '_', '.', '-' or '/'`);
    expect(error('node.labels.zone==')).toBe('constraint "node.labels.zone==": the value is empty');
    expect(error('node.labels.zone==a==b')).toBe(`constraint "node.labels.zone==a==b": the value must not contain '=' or '!'`);
    expect(error('node.role==boss')).toBe('constraint "node.role==boss": node.role is manager or worker');
    expect(error('constructor==a')).toMatch(/unknown attribute "constructor"/);
    expect(error(`node.labels.x==${'v'.repeat(300)}`)).toBe('constraint is longer than 256 characters');
  });

  it('parsePreference accepts an attribute and names the preference otherwise', () => {
    const zone = parsePreference('node.labels.zone');
    expect(zone).toEqual({ ok: true, value: { kind: 'label', key: 'zone', text: 'node.labels.zone' } });
    expect(parsePreference('zone')).toEqual({ ok: false, error: 'placement preference "zone": unknown attribute "zone": use node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.KEY' });
  });

  it('constraintMet compares values without case; a missing label fails == and passes !=', () => {
    const worker = node('n1', { hostname: 'Web-1', labels: { zone: 'A' }, platform: { os: 'linux', arch: 'aarch64' } });
    expect(constraintMet(parsed('node.hostname==web-1'), worker)).toBe(true);
    expect(constraintMet(parsed('node.labels.zone==a'), worker)).toBe(true);
    expect(constraintMet(parsed('node.labels.zone!=a'), worker)).toBe(false);
    expect(constraintMet(parsed('node.labels.disk==ssd'), worker)).toBe(false);
    expect(constraintMet(parsed('node.labels.disk!=ssd'), worker)).toBe(true);
    expect(constraintMet(parsed('node.id==n1'), worker)).toBe(true);
    expect(constraintMet(parsed('node.role==manager'), worker)).toBe(false);
    expect(constraintMet(parsed('node.platform.os==linux'), worker)).toBe(true);
    expect(constraintMet(parsed('node.platform.arch!=x86_64'), worker)).toBe(true);
  });

  it('constraintMet does not take inherited properties for labels', () => {
    expect(constraintMet(parsed('node.labels.toString!=x'), node('n1'))).toBe(true);
  });
});
