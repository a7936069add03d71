// The Signer contract on software keys, and algorithm selection from public keys.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { algorithmForPublicKey, UnsupportedKeyError } from '../src/signing/signer';
import { OID } from '../src/ocsp/oids';
import { describeSigner } from './support/describe-signer';
import { softwareSigner } from './support/key-signer';

for (const kind of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
  describeSigner(`software ${kind}`, async () => {
    const s = softwareSigner(kind);
    return { signer: s, publicKey: s.publicKey };
  });
}

describe('algorithmForPublicKey', () => {
  it('maps P-256, P-384 and RSA-2048 to their signature algorithms', () => {
    assert.equal(softwareSigner('ec-p256').algorithm.oid, OID.ecdsaWithSha256);
    assert.equal(softwareSigner('ec-p384').algorithm.oid, OID.ecdsaWithSha384);
    assert.equal(softwareSigner('rsa-2048').algorithm.oid, OID.sha256WithRsa);
  });
  it('refuses RSA under 2048 bits and unsupported curves', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    assert.throws(() => algorithmForPublicKey(small), UnsupportedKeyError);
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
    assert.throws(() => algorithmForPublicKey(k1), /curve secp256k1 is not supported/);
    const ed = generateKeyPairSync('ed25519').publicKey;
    assert.throws(() => algorithmForPublicKey(ed), /ed25519 is not supported/);
  });
});
