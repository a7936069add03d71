// A PIN the token refuses stops for good: serve and presign exit with a code of their own (3 refused, 4 locked),
// after one login attempt, also with waitForToken; systemd's RestartPreventExitStatus= relies on those codes.
// The PKCS#11 shim counts C_Login calls and emulates a real HSM's PIN lock (SoftHSM2 never locks).
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { childEnv, createTestPki, runCliAsync, TestPki, variantConfig } from './support/harness';
import { Shim } from './support/shim';

describe('wrong PIN', () => {
  let pki: TestPki;
  let shim: Shim;
  let pin: string;
  const held: Server[] = [];

  before(() => {
    pki = createTestPki([{ name: 'one', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    shim = Shim.build(pki.dir);
    pin = readFileSync(pki.userPinFile, 'utf8').trim();
  });
  after(() => held.forEach((s) => s.close()));

  /** Runs a command on a config through the shim; returns exit status, output, login attempts and seconds taken. */
  async function run(args: string[], name: string, edit: (c: Record<string, any>) => void, env: Record<string, string> = {}) {
    const config = variantConfig(pki, name, (c) => {
      c.tokens[0].module = shim.library;
      edit(c);
    });
    const logins = shim.loginCalls();
    const started = Date.now();
    const r = await runCliAsync([...args, '--config', config], childEnv(pki, { ...shim.env(pki.modulePath), ...env }), 60_000);
    const out = r.stdout + r.stderr;
    assert.ok(!out.includes(pin), 'the PIN must not appear in the output');
    for (const secret of Object.values(env)) assert.ok(!out.includes(secret), 'the PIN given must not appear in the output');
    return { status: r.status, out, stderr: r.stderr, logins: shim.loginCalls() - logins, seconds: (Date.now() - started) / 1000 };
  }

  const wrongPin = (c: Record<string, any>) => (c.tokens[0].pin = { env: 'TEST_OCSP_PIN' });
  const WRONG = { TEST_OCSP_PIN: 'wrong-pin-4711' };

  it('serve: a refused PIN exits 3 after one login attempt', async () => {
    const r = await run(['serve'], 'serve-wrong', wrongPin, WRONG);
    assert.equal(r.status, 3, r.out);
    assert.match(r.stderr, /^ocsp-hsm: token "main" \(tokens\[0\], tokenLabel "test-\d+"\): login failed: CKR_PIN_INCORRECT$/m);
    assert.equal(r.logins, 1);
    assert.ok(r.seconds < 20, `took ${r.seconds}s`);
  });

  it('serve with waitForToken: a refused PIN still exits 3 at once, not retried', async () => {
    const r = await run(['serve'], 'serve-wrong-wait', (c) => {
      wrongPin(c);
      c.tokens[0].waitForToken = '5m';
      c.tokens[0].recovery = { initialBackoff: '100ms', maxBackoff: '200ms' };
    }, WRONG);
    assert.equal(r.status, 3, r.out);
    assert.match(r.stderr, /login failed: CKR_PIN_INCORRECT/);
    assert.equal(r.logins, 1, 'one attempt, where waiting would retry every 200ms');
    assert.ok(r.seconds < 30, `took ${r.seconds}s of the 5m it could wait`);
  });

  it('serve: a locked PIN exits 4 after one login attempt', async () => {
    shim.emulatePinLock(3, 3);
    try {
      const r = await run(['serve'], 'serve-locked', () => undefined);
      assert.equal(r.status, 4, r.out);
      assert.match(r.stderr, /login failed: CKR_PIN_LOCKED/);
      assert.equal(r.logins, 1);
    } finally {
      shim.emulatePinLock(0, 0);
    }
  });

  it('a token locking after three wrong PINs: a restart loop would lock it, exit 3 lets systemd stop first', async () => {
    shim.emulatePinLock(3, 0);
    try {
      const first = await run(['serve'], 'serve-counted', wrongPin, WRONG);
      assert.equal(first.status, 3);
      // The right PIN still works: one wrong attempt was spent, not the token.
      const good = await run(['config', 'check'], 'check-counted', () => undefined);
      assert.equal(good.status, 0, good.out);
    } finally {
      shim.emulatePinLock(0, 0);
    }
  });

  it('presign: a refused PIN exits 3', async () => {
    const r = await run(['presign'], 'presign-wrong', wrongPin, WRONG);
    assert.equal(r.status, 3, r.out);
    assert.match(r.stderr, /login failed: CKR_PIN_INCORRECT/);
    assert.equal(r.logins, 1);
  });

  it('a PIN source that is not there is a config problem: exit 1, no login tried', async () => {
    const r = await run(['serve'], 'serve-no-pin', (c) => (c.tokens[0].pin = { env: 'TEST_OCSP_PIN_UNSET' }));
    assert.equal(r.status, 1, r.out);
    assert.match(r.stderr, /environment variable TEST_OCSP_PIN_UNSET \(pin\.env\) is not set/);
    assert.equal(r.logins, 0);
  });

  it('serve: a port in use is found before the PIN is spent', async () => {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    held.push(s);
    const port = (s.address() as { port: number }).port;
    const r = await run(['serve'], 'serve-busy', (c) => (c.server.port = port));
    assert.equal(r.status, 1, r.out);
    assert.match(r.stderr, new RegExp(`^ocsp-hsm: server\\.port: cannot listen on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`, 'm'));
    assert.equal(r.logins, 0, 'no login attempt');
  });
});
