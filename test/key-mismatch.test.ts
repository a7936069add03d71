// A token key of another type, curve or size than its certificate's public key gets a message naming both.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { describePublicKey, KeyDescription, keyMismatch } from '../src/hsm/keys';

const ec = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve }).publicKey;
const rsa = (modulusLength: number) => generateKeyPairSync('rsa', { modulusLength }).publicKey;
const KEY = 'CA "one": cas[0].signer.key (label "k" on token "main")';
const CERT = 'cas[0].signer.certificate (CN=r)';

const token = (d: Partial<KeyDescription> & { text: string; type: KeyDescription['type'] }): KeyDescription => ({ canSign: true, ...d });

describe('key type versus certificate', () => {
  it('describes certificate keys as the token keys are described', () => {
    assert.equal(describePublicKey(ec('prime256v1')).text, 'EC P-256');
    assert.equal(describePublicKey(ec('secp384r1')).text, 'EC P-384');
    assert.equal(describePublicKey(rsa(2048)).text, 'RSA 2048');
  });

  it('RSA key for an EC certificate, and the reverse', () => {
    assert.equal(
      keyMismatch(token({ type: 'rsa', bits: 2048, text: 'RSA 2048' }), ec('prime256v1'), KEY, CERT),
      `${KEY} is an RSA 2048 key but the certificate in ${CERT} holds an EC P-256 public key`,
    );
    assert.equal(
      keyMismatch(token({ type: 'ec', curve: 'P-384', text: 'EC P-384' }), rsa(2048), KEY, CERT),
      `${KEY} is an EC P-384 key but the certificate in ${CERT} holds an RSA 2048 public key`,
    );
  });

  it('another curve or another RSA size', () => {
    assert.match(keyMismatch(token({ type: 'ec', curve: 'P-256', text: 'EC P-256' }), ec('secp384r1'), KEY, CERT)!, /is an EC P-256 key but .* holds an EC P-384 public key/);
    assert.match(keyMismatch(token({ type: 'rsa', bits: 3072, text: 'RSA 3072' }), rsa(2048), KEY, CERT)!, /is an RSA 3072 key but .* holds an RSA 2048 public key/);
  });

  it('agreeing type, curve and size: no complaint (the test signature decides); a key without CKA_SIGN: one', () => {
    assert.equal(keyMismatch(token({ type: 'ec', curve: 'P-256', text: 'EC P-256' }), ec('prime256v1'), KEY, CERT), undefined);
    assert.equal(keyMismatch(token({ type: 'rsa', bits: 2048, text: 'RSA 2048' }), rsa(2048), KEY, CERT), undefined);
    assert.match(keyMismatch(token({ type: 'ec', curve: 'P-256', text: 'EC P-256', canSign: false }), ec('prime256v1'), KEY, CERT)!, /may not sign \(its CKA_SIGN is false\)/);
  });
});
