// Extra key pairs on a test PKI's token and responder certificates for them, issued with the CA key inside the
// token: for rotation, mismatch and expiry tests. This process opens the token (SOFTHSM2_CONF is read once per
// process: one PKI per test process); do it before a responder starts, so the responder finds the keys at once.
import { KeyObject, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pkcs11js from 'pkcs11js';
import { systemClock } from '../../src/clock';
import { findSlotByLabel, loadModule } from '../../src/hsm/module';
import { Pkcs11Signer } from '../../src/hsm/pkcs11-signer';
import { algorithmForPublicKey } from '../../src/signing/signer';
import { generateKeyPair, KeySpec } from '../../src/hsm/token-admin';
import { HsmToken, NULL_OBSERVER, SILENT_LOG } from '../../src/hsm/token';
import { readCertificate, toPem } from '../../src/pki/certificate';
import { issueCertificate } from '../../src/pki/issue';
import type { TestCa, TestPki } from './harness';

export interface TokenExtras {
  /** A new key pair on the token; returns its public key. */
  generate(label: string, spec: KeySpec): Promise<KeyObject>;
  /** A delegated responder certificate for `publicKey`, issued by the CA's own key; returns the PEM file. */
  issueResponder(ca: TestCa, publicKey: KeyObject, notBefore: Date, notAfter: Date, name: string): Promise<string>;
  close(): Promise<void>;
}

export function tokenExtras(pki: TestPki): TokenExtras {
  process.env.SOFTHSM2_CONF = pki.softhsmConf;
  const pin = readFileSync(pki.userPinFile, 'utf8').trim();
  const p11 = loadModule(pki.modulePath);
  const session = p11.C_OpenSession(findSlotByLabel(p11, pki.tokenLabel)!, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  const token = new HsmToken({
    name: 't', describe: 'token', modulePath: pki.modulePath, label: pki.tokenLabel, sessions: 1, pin: async () => pin,
    signTimeoutMs: 10_000, backoff: { initialMs: 100, maxMs: 1000 }, healthCheckMs: 0, clock: systemClock, observer: NULL_OBSERVER, log: SILENT_LOG,
  });
  const signers = new Map(
    pki.cas.map((ca) => {
      const cert = readCertificate(ca.caCertFile);
      const key = token.addKey({ ref: { label: ca.caKeyLabel }, publicKey: cert.x509.publicKey, algorithm: algorithmForPublicKey(cert.x509.publicKey), describe: ca.caKeyLabel, certDescribe: 'cert' });
      return [ca.name, { cert, signer: new Pkcs11Signer(token, key) }];
    }),
  );
  // The token's login is shared by every session of this process: the token's activation logs in for both.
  const activated = token.activate();
  let n = 0;
  return {
    async generate(label, spec) {
      await activated;
      return generateKeyPair(p11, session, spec, label, randomBytes(8));
    },
    async issueResponder(ca, publicKey, notBefore, notAfter, name) {
      await activated;
      const { cert, signer } = signers.get(ca.name)!;
      const issued = await issueCertificate({
        subjectCN: `${ca.name} responder ${++n}`, publicKey, serial: BigInt(`0x${randomBytes(8).toString('hex')}`) | 1n,
        notBefore, notAfter, issuer: cert, signer, kind: 'ocsp-responder',
      });
      const file = join(pki.dir, `${name}.pem`);
      writeFileSync(file, toPem(issued.der));
      return file;
    },
    close() {
      return token.close();
    },
  };
}
