import { describe, expect, it } from 'vitest';
import type { Service } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { parseResolveImage, specForUpdate } from './stack-deploy.js';
import { stackRows } from './stack.js';
import { composeServiceSpec, webService } from './testing/compose-plan.js';

const fromFile = (image = 'demo/web:v1'): ServiceSpec => composeServiceSpec(webService('').replace('demo/web:v1', image), 'web');

describe('stack', () => {
  it('stack rows count the services of each stack label, by name, and leave out services of no stack', () => {
    const service = (labels: Record<string, string>): Service => ({ spec: { ...fromFile(), labels } }) as Service;
    const label = (stack: string): Record<string, string> => ({ 'com.docker.stack.namespace': stack });
    expect(stackRows([service(label('shop')), service({}), service(label('blog')), service(label('shop'))])).toEqual([
      { name: 'blog', services: 1 },
      { name: 'shop', services: 2 },
    ]);
  });

  it('stack updates keep what a Compose file cannot say from the stored spec', () => {
    const stored = fromFile();
    const tuned: ServiceSpec = {
      ...stored,
      deployStrategy: 'blue-green',
      rebalance: 'auto',
      bluegreenHoldMs: 30_000,
      canaryReplicas: 0,
      taskTemplate: { ...stored.taskTemplate!, forceUpdate: 3 },
    };
    const next = specForUpdate(fromFile('demo/web:v2'), tuned, 'always');
    expect(next).toMatchObject({ deployStrategy: 'blue-green', rebalance: 'auto', bluegreenHoldMs: 30_000, taskTemplate: { forceUpdate: 3, container: { image: 'demo/web:v2' } } });
  });

  it('stack updates with --resolve-image never keep the pinned image while the file names the same image', () => {
    const stored = fromFile();
    const pinned: ServiceSpec = { ...stored, taskTemplate: { ...stored.taskTemplate!, container: { ...stored.taskTemplate!.container!, image: `demo/web:v1@sha256:${'a'.repeat(64)}` } } };
    expect(specForUpdate(fromFile(), pinned, 'never').taskTemplate?.container?.image).toBe(`demo/web:v1@sha256:${'a'.repeat(64)}`);
    expect(specForUpdate(fromFile(), pinned, 'always').taskTemplate?.container?.image).toBe('demo/web:v1');
    expect(specForUpdate(fromFile('demo/web:v2'), pinned, 'never').taskTemplate?.container?.image).toBe('demo/web:v2');
    // An unchanged file over its own stored spec is the same spec: the manager keeps its version.
    expect(specForUpdate(fromFile(), stored, 'always')).toEqual(stored);
  });

  it('stack deploy takes --resolve-image always or never', () => {
    expect(parseResolveImage('never')).toBe('never');
    expect(() => parseResolveImage('changed')).toThrow('invalid value "changed" for --resolve-image: use always or never');
  });
});
