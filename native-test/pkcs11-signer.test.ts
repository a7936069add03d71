// The Signer contract on real SoftHSM2 keys, and proof the generated private keys cannot leave the token.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { findSlotByLabel, finalizeModules, loadModule } from '../src/hsm/module';
import { findPrivateKey, Pkcs11Signer } from '../src/hsm/pkcs11-signer';
import { SessionPool } from '../src/hsm/session-pool';
import { algorithmForPublicKey } from '../src/hsm/signer';
import { readCertificate } from '../src/pki/certificate';
import { describeSigner } from '../test/support/describe-signer';
import { createTestPki, TestPki } from './support/harness';

// Built in a child process, then opened here: this file's process gets its own SOFTHSM2_CONF.
const pki: TestPki = createTestPki([
  { name: 'p256', caKey: 'ec-p256' },
  { name: 'p384', caKey: 'ec-p384' },
  { name: 'rsa', caKey: 'rsa-2048' },
]);
process.env.SOFTHSM2_CONF = pki.softhsmConf;
let pool: SessionPool | undefined;

function openPool(): SessionPool {
  if (pool) return pool;
  const p11 = loadModule(pki.modulePath);
  pool = new SessionPool(p11, findSlotByLabel(p11, pki.tokenLabel)!, 4);
  pool.open(readFileSync(pki.userPinFile, 'utf8').trim());
  return pool;
}

for (const ca of pki.cas) {
  describeSigner(`SoftHSM2 ${ca.name}`, async () => {
    const p = openPool();
    const cert = readCertificate(ca.caCertFile);
    const signer = new Pkcs11Signer(p, findPrivateKey(p, { label: ca.caKeyLabel }), algorithmForPublicKey(cert.x509.publicKey));
    return { signer, publicKey: cert.x509.publicKey };
  });
}

describe('keys generated in the token', () => {
  before(() => openPool());
  after(() => {
    pool?.close();
    finalizeModules();
  });

  it('are sensitive, not extractable, and refuse to reveal their value', () => {
    const p = openPool();
    for (const ca of pki.cas) {
      const key = findPrivateKey(p, { label: ca.caKeyLabel });
      const [sensitive, extractable] = p.p11.C_GetAttributeValue(p.anySession(), key, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
      ]);
      assert.equal((sensitive!.value as Buffer)[0], 1, `${ca.name}: CKA_SENSITIVE`);
      assert.equal((extractable!.value as Buffer)[0], 0, `${ca.name}: CKA_EXTRACTABLE`);
      const valueAttr = ca.caKeyLabel.startsWith('rsa') ? pkcs11js.CKA_PRIVATE_EXPONENT : pkcs11js.CKA_VALUE;
      assert.throws(
        () => p.p11.C_GetAttributeValue(p.anySession(), key, [{ type: valueAttr }]),
        (e: unknown) => e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_ATTRIBUTE_SENSITIVE,
      );
    }
  });

  it('are found by CKA_ID as well as by label', () => {
    const p = openPool();
    // pki-builder gives CA number i the CKA_ID [i, 1].
    assert.deepEqual(findPrivateKey(p, { id: '0101' }), findPrivateKey(p, { label: 'p384-ca' }));
    assert.throws(() => findPrivateKey(p, { id: 'ffff' }), /no private key with id ffff/);
  });
});
