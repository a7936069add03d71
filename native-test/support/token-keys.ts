// Child-process entry: initializes a fresh SoftHSM2 token and generates EC P-256 key pairs inside it, writing each
// public key as <dir>/<label>.pub.pem for openssl to certify. Own process: SoftHSM2 reads SOFTHSM2_CONF once.
// usage: SOFTHSM2_CONF=... node token-keys.js <dir> <tokenLabel> <userPinFile> '<json labels[]>'
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pkcs11js from 'pkcs11js';
import { findSoftHsmModule } from '../../src/demo/softhsm';
import { findSlotByLabel, finalizeModules, loadModule } from '../../src/hsm/module';
import { generateKeyPair, initToken } from '../../src/hsm/token-admin';

const [dir, tokenLabel, pinFile, labelsJson] = process.argv.slice(2) as [string, string, string, string];
const p11 = loadModule(findSoftHsmModule());
const pin = readFileSync(pinFile, 'utf8').trim();
initToken(p11, tokenLabel, randomBytes(8).toString('hex'), pin);
const slot = findSlotByLabel(p11, tokenLabel)!;
const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
p11.C_Login(session, pkcs11js.CKU_USER, pin);
(JSON.parse(labelsJson) as string[]).forEach((label, i) => {
  const pub = generateKeyPair(p11, session, 'ec-p256', label, Buffer.from([i + 1]));
  writeFileSync(join(dir, `${label}.pub.pem`), pub.export({ type: 'spki', format: 'pem' }));
});
p11.C_Logout(session);
finalizeModules();
