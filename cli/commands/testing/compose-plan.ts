/** Test helper: Compose text through the whole translation, as `skiff stack deploy shop` would see it. */
import { loadComposeFiles } from '../compose-file.js';
import { type StackPlan, translateCompose } from '../compose.js';
import type { ServiceSpec } from '../../../proto/skiff/v1/specs.js';

/** The plan of stack "shop" from `texts` (merged in order), the files in /srv/shop, HOME /home/ann, variables from `environment`. */
export function composePlan(texts: string | readonly string[], environment: Record<string, string> = {}): StackPlan {
  const lookup = (name: string): string | undefined => environment[name];
  const sources = (typeof texts === 'string' ? [texts] : texts).map((text, index) => ({ name: `file${index + 1}.yml`, text }));
  const { document } = loadComposeFiles(sources, lookup);
  return translateCompose(document, { stack: 'shop', directory: '/srv/shop', home: '/home/ann', environment: lookup });
}

/** The spec of service `key` of stack "shop". */
export function composeServiceSpec(text: string, key: string, environment: Record<string, string> = {}): ServiceSpec {
  const found = composePlan(text, environment).services.find((service) => service.name === `shop_${key}`);
  if (found === undefined) throw new Error(`no service shop_${key}`);
  return found;
}

/** A one-service file: `web` with image demo/web:v1 and the given YAML lines under it (indented by the caller). */
export function webService(lines: string): string {
  return `services:\n  web:\n    image: demo/web:v1\n${lines}`;
}
