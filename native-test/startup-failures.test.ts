// Startup failures exit non-zero with a message naming the cause, and the PIN appears nowhere.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { childEnv, createTestPki, runCli, startResponder, TestPki, variantConfig } from './support/harness';

describe('startup failures', () => {
  let pki: TestPki;
  let pin: string;

  before(() => {
    pki = createTestPki([
      { name: 'one', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'two', caKey: 'ec-p256', responderKey: 'ec-p256' },
    ]);
    pin = readFileSync(pki.userPinFile, 'utf8').trim();
  });

  function fails(configFile: string, expected: RegExp, env: Record<string, string> = {}) {
    const r = runCli(['serve', '--config', configFile], childEnv(pki, env));
    const out = r.stdout + r.stderr;
    assert.notEqual(r.status, 0, `expected failure, got exit ${r.status}:\n${out}`);
    assert.match(out, expected);
    assert.ok(!out.includes(pin), 'the real PIN must not appear in output');
    for (const secret of Object.values(env)) assert.ok(!out.includes(secret), 'the PIN given must not appear in output');
    assert.match(r.stderr, /^ocsp-hsm: /m, 'one readable line on stderr');
    return out;
  }

  it('wrong PIN from the environment: names the token and CKR_PIN_INCORRECT', () => {
    const cfg = variantConfig(pki, 'wrong-pin', (c) => (c.tokens[0].pin = { env: 'TEST_OCSP_PIN' }));
    fails(cfg, /token "main" \(tokens\[0\], tokenLabel "test-\d+"\): login failed: CKR_PIN_INCORRECT/, { TEST_OCSP_PIN: 'wrong-pin-4711' });
  });

  it('PIN environment variable unset: names the variable', () => {
    const cfg = variantConfig(pki, 'no-pin', (c) => (c.tokens[0].pin = { env: 'TEST_OCSP_PIN_UNSET' }));
    fails(cfg, /environment variable TEST_OCSP_PIN_UNSET \(pin\.env\) is not set/);
  });

  it('PIN prompt without a terminal: says to use env or file', () => {
    const cfg = variantConfig(pki, 'prompt', (c) => (c.tokens[0].pin = { prompt: true }));
    fails(cfg, /pin\.prompt needs a terminal on stdin; use pin\.env or pin\.file/);
  });

  it('missing key label: names the CA, the field and the label', () => {
    const cfg = variantConfig(pki, 'missing-key', (c) => (c.cas[0].signer.key = { label: 'no-such-key' }));
    fails(cfg, /CA "one": cas\[0\]\.signer\.key \(label "no-such-key" on token "main"\): no private key with label "no-such-key"/);
  });

  it('key and certificate that do not match: names both', () => {
    // CA one's responder certificate with CA two's responder key.
    const cfg = variantConfig(pki, 'mismatch', (c) => (c.cas[0].signer.key = { label: 'two-responder' }));
    fails(cfg, /CA "one": cas\[0\]\.signer\.key \(label "two-responder" on token "main"\) does not match the certificate in cas\[0\]\.signer\.certificate/);
  });

  it('responder certificate from another CA: names the field', () => {
    const cfg = variantConfig(pki, 'foreign-responder', (c) => {
      c.cas[0].signer.certificate = c.cas[1].signer.certificate;
      c.cas[0].signer.key = c.cas[1].signer.key;
    });
    fails(cfg, /cas\[0\]\.signer\.certificate: responder certificate was not issued by the CA certificate/);
  });

  it('unknown token label: names the label', () => {
    const cfg = variantConfig(pki, 'bad-label', (c) => (c.tokens[0].tokenLabel = 'absent-token'));
    fails(cfg, /tokenLabel "absent-token"\): no initialized token with this label/);
  });

  it('invalid config fields: every one named, exit before touching the token', () => {
    const cfg = variantConfig(pki, 'invalid', (c) => {
      c.server.port = 'eighty';
      c.cas[0].validity = '10 years';
      c.extra = true;
    });
    const out = fails(cfg, /invalid configuration/);
    assert.match(out, /server\.port: Expected number, received string/);
    assert.match(out, /cas\[0\]\.validity: invalid duration "10 years"/);
    assert.match(out, /Unrecognized key\(s\) in object: 'extra'/);
  });

  it('missing certificate file: names the field and the path', () => {
    const cfg = variantConfig(pki, 'no-cert', (c) => (c.cas[1].certificate = 'missing.pem'));
    fails(cfg, /cas\[1\]\.certificate: .*missing\.pem/);
  });

  it('a port already in use: says so', async () => {
    const running = await startResponder(pki);
    try {
      const cfg = variantConfig(pki, 'busy-port', (c) => (c.server.port = running.port));
      fails(cfg, /cannot listen on 127\.0\.0\.1:\d+: listen EADDRINUSE/);
    } finally {
      await running.stop();
    }
  });

  it('a running daemon has no PIN in its argv or logs', async () => {
    const cfg = variantConfig(pki, 'env-pin', (c) => (c.tokens[0].pin = { env: 'TEST_OCSP_PIN' }));
    const running = await startResponder(pki, { config: cfg, env: { TEST_OCSP_PIN: pin } });
    try {
      const cmdline = readFileSync(`/proc/${running.proc.pid}/cmdline`, 'utf8');
      assert.ok(!cmdline.includes(pin));
      assert.match(running.output(), /"msg":"listening"/);
    } finally {
      await running.stop();
    }
    assert.ok(!running.output().includes(pin));
  });

  it('warns about a PIN file readable by others, without printing the PIN', async () => {
    const file = join(pki.dir, 'loose.pin');
    writeFileSync(file, pin + '\n', { mode: 0o644 });
    const cfg = variantConfig(pki, 'loose-pin', (c) => (c.tokens[0].pin = { file }));
    const running = await startResponder(pki, { config: cfg });
    await running.stop();
    assert.match(running.output(), /PIN file .*loose\.pin is readable by group or others/);
    assert.ok(!running.output().includes(pin));
  });
});
