// A PIN read from an environment variable leaves the environment: processes started afterwards do not inherit it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { PinError, pinReader, readPin } from '../src/hsm/pin';

const PIN = 'S3cretPIN-4711';
const childSees = (name: string) =>
  spawnSync(process.execPath, ['-e', `process.stdout.write(process.env.${name} ?? '')`], { encoding: 'utf8' }).stdout;

describe('PIN from an environment variable', () => {
  it('is removed from process.env once read, so a child process does not get it; reading again still works', async () => {
    process.env.TEST_SECRETS_PIN_A = PIN;
    assert.equal(childSees('TEST_SECRETS_PIN_A'), PIN); // as a child started before the read would
    assert.equal(await readPin({ env: 'TEST_SECRETS_PIN_A' }, { what: 'token "t"' }), PIN);
    assert.equal(process.env.TEST_SECRETS_PIN_A, undefined);
    assert.equal(childSees('TEST_SECRETS_PIN_A'), '');
    // A second token naming the same variable, or a token logging in again after a fault.
    assert.equal(await readPin({ env: 'TEST_SECRETS_PIN_A' }, { what: 'token "u"' }), PIN);
  });

  it("a daemon's token takes it when made, before any serving process is started, and hands it out when asked", async () => {
    process.env.TEST_SECRETS_PIN_B = PIN;
    const pin = pinReader({ env: 'TEST_SECRETS_PIN_B' }, { what: 'token "t"' });
    assert.equal(process.env.TEST_SECRETS_PIN_B, undefined);
    assert.equal(childSees('TEST_SECRETS_PIN_B'), '');
    assert.equal(await pin(), PIN);
    assert.equal(await pin(), PIN);
  });

  it('an unset variable is an error naming it, when the PIN is asked for', async () => {
    const pin = pinReader({ env: 'TEST_SECRETS_PIN_UNSET' }, { what: 'token "t"' });
    await assert.rejects(pin(), (e) => e instanceof PinError && /token "t": environment variable TEST_SECRETS_PIN_UNSET \(pin\.env\) is not set or empty/.test(e.message));
  });

  it('an environment passed in is the one it is taken from', async () => {
    const env: NodeJS.ProcessEnv = { P: PIN };
    assert.equal(await readPin({ env: 'P' }, { what: 'x', env }), PIN);
    assert.deepEqual(env, {});
  });
});
