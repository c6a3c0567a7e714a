import { describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { waitForUnlock } from './locked-server.js';

describe('the locked manager\'s socket', () => {
  it('refuses a control socket path too long to bind, before binding anything', async () => {
    const tooLong = `/tmp/${'x'.repeat(120)}/skiff.sock`;
    await expect(waitForUnlock(tooLong, async () => undefined, createLogger({}, () => undefined))).rejects.toThrow(`cannot serve the control API on ${tooLong}: a unix socket path is at most 107 bytes`);
  });
});
