// The Signer contract on real SoftHSM2 keys, and proof the generated private keys cannot leave the token.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { systemClock } from '../src/clock';
import { findPrivateKey } from '../src/hsm/keys';
import { findSlotByLabel, finalizeModules, loadModule } from '../src/hsm/module';
import { acquireAll } from '../src/signing/permits';
import { Pkcs11Signer } from '../src/hsm/pkcs11-signer';
import { SigningLimiter } from '../src/signing/signing-limiter';
import { algorithmForPublicKey, Signer } from '../src/signing/signer';
import { HsmToken, NULL_OBSERVER, SILENT_LOG } from '../src/hsm/token';
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
const pin = readFileSync(pki.userPinFile, 'utf8').trim();
const token = new HsmToken({
  name: 't', describe: 'token', modulePath: pki.modulePath, label: pki.tokenLabel, sessions: 4, pin: async () => pin,
  signTimeoutMs: 10_000, backoff: { initialMs: 100, maxMs: 1000 }, healthCheckMs: 0, clock: systemClock,
  observer: NULL_OBSERVER, log: SILENT_LOG,
});
const signers = pki.cas.map((ca) => {
  const cert = readCertificate(ca.caCertFile);
  const key = token.addKey({ ref: { label: ca.caKeyLabel }, publicKey: cert.x509.publicKey, algorithm: algorithmForPublicKey(cert.x509.publicKey), describe: ca.caKeyLabel, certDescribe: 'cert' });
  // As the daemon composes it: the limiter keeps concurrency within the token's sessions.
  const limiter = new SigningLimiter({
    name: ca.name, ratePerSecond: 0, burst: 1, maxConcurrent: 4, maxQueue: 1000, queueTimeoutMs: 10_000, clientShare: 1, clock: systemClock,
  });
  const inner = new Pkcs11Signer(token, key);
  const signer: Signer = {
    algorithm: inner.algorithm,
    sign: async (data) => {
      const permit = await acquireAll([limiter], { lane: 'live' });
      try {
        return await inner.sign(data);
      } finally {
        permit.release();
      }
    },
  };
  return { signer, publicKey: cert.x509.publicKey };
});
const activated = token.activate();

pki.cas.forEach((ca, i) => {
  describeSigner(`SoftHSM2 ${ca.name}`, async () => {
    await activated;
    return signers[i]!;
  });
});

/** An admin session of our own for attribute checks (the token's sessions belong to its signers). */
function adminSession() {
  const p11 = loadModule(pki.modulePath);
  const session = p11.C_OpenSession(findSlotByLabel(p11, pki.tokenLabel)!, pkcs11js.CKF_SERIAL_SESSION);
  return { p11, session };
}

describe('keys generated in the token', () => {
  before(() => activated);
  after(async () => {
    await token.close();
    finalizeModules();
  });

  it('are sensitive, not extractable, and refuse to reveal their value', () => {
    const { p11, session } = adminSession();
    for (const ca of pki.cas) {
      const key = findPrivateKey(p11, session, { label: ca.caKeyLabel });
      const [sensitive, extractable] = p11.C_GetAttributeValue(session, key, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
      ]);
      assert.equal((sensitive!.value as Buffer)[0], 1, `${ca.name}: CKA_SENSITIVE`);
      assert.equal((extractable!.value as Buffer)[0], 0, `${ca.name}: CKA_EXTRACTABLE`);
      const valueAttr = ca.caKeyLabel.startsWith('rsa') ? pkcs11js.CKA_PRIVATE_EXPONENT : pkcs11js.CKA_VALUE;
      assert.throws(
        () => p11.C_GetAttributeValue(session, key, [{ type: valueAttr }]),
        (e: unknown) => e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_ATTRIBUTE_SENSITIVE,
      );
    }
  });

  it('are found by CKA_ID as well as by label', () => {
    const { p11, session } = adminSession();
    // pki-builder gives CA number i the CKA_ID [i, 1].
    assert.deepEqual(findPrivateKey(p11, session, { id: '0101' }), findPrivateKey(p11, session, { label: 'p384-ca' }));
    assert.throws(() => findPrivateKey(p11, session, { id: 'ffff' }), /no private key with id ffff/);
  });
});
