// Key errors at startup name the fix: a key of another type, curve or size than its certificate is said to be so
// before any test signature (no opaque CKR_GENERAL_ERROR), and a key not found comes with the keys that exist.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { childEnv, createTestPki, runCli, TestPki, variantConfig } from './support/harness';

describe('key errors at startup', () => {
  let pki: TestPki;
  let pin: string;

  before(() => {
    pki = createTestPki([
      { name: 'one', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'two', caKey: 'rsa-2048', responderKey: 'rsa-2048' },
      { name: 'three', caKey: 'ec-p256', responderKey: 'ec-p384' },
    ]);
    pin = readFileSync(pki.userPinFile, 'utf8').trim();
  });

  function serveFails(name: string, edit: (c: Record<string, any>) => void): string {
    const r = runCli(['serve', '--config', variantConfig(pki, name, edit)], childEnv(pki));
    const out = r.stdout + r.stderr;
    assert.equal(r.status, 1, out);
    assert.ok(!out.includes(pin), 'the PIN must not appear in output');
    assert.doesNotMatch(out, /test signature failed|CKR_GENERAL_ERROR/, 'the type is checked before any signature');
    return r.stderr;
  }

  it('an RSA key for an EC certificate', () => {
    const err = serveFails('rsa-for-ec', (c) => (c.cas[0].signer.key = { label: 'two-responder' }));
    assert.match(err, /^ocsp-hsm: CA "one": cas\[0\]\.signer\.key \(label "two-responder" on token "main"\) is an RSA 2048 key but the certificate in cas\[0\]\.signer\.certificate \(O=[^)]*, CN=one OCSP Responder\) holds an EC P-256 public key$/m);
  });

  it('an EC key for an RSA certificate', () => {
    const err = serveFails('ec-for-rsa', (c) => (c.cas[1].signer.key = { label: 'one-responder' }));
    assert.match(err, /CA "two": cas\[1\]\.signer\.key \(label "one-responder" on token "main"\) is an EC P-256 key but the certificate in cas\[1\]\.signer\.certificate .* holds an RSA 2048 public key/);
  });

  it('an EC key on another curve', () => {
    const err = serveFails('other-curve', (c) => (c.cas[2].signer.key = { label: 'one-responder' }));
    assert.match(err, /CA "three": cas\[2\]\.signer\.key \(label "one-responder" on token "main"\) is an EC P-256 key but the certificate in cas\[2\]\.signer\.certificate .* holds an EC P-384 public key/);
  });

  it('a key not found: the private keys that exist, with their ids', () => {
    const err = serveFails('no-such-key', (c) => (c.cas[0].signer.key = { label: 'one-responer' }));
    assert.match(err, /CA "one": cas\[0\]\.signer\.key \(label "one-responer" on token "main"\): no private key with label "one-responer" on the token; private keys on it: /);
    // pki-builder gives CA i the ids [i, 1] (CA key) and [i, 2] (responder key).
    for (const [label, id] of [['one-ca', '0001'], ['one-responder', '0002'], ['two-ca', '0101'], ['two-responder', '0102'], ['three-ca', '0201'], ['three-responder', '0202']]) {
      assert.ok(err.includes(`"${label}" (id ${id})`), `${label} listed in: ${err}`);
    }
  });

  it('a key URI whose label and id name no single key: both shown, and what exists', () => {
    const err = serveFails('uri-mismatch', (c) => (c.cas[0].signer.key = 'pkcs11:object=one-responder;id=%00%01'));
    assert.match(err, /no private key with label "one-responder" and id 0001 on the token; private keys on it: .*"one-responder" \(id 0002\)/);
  });
});
