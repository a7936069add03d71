// Session threads against real SoftHSM2: fresh processes, each bringing up a 4-session token (the first session
// initializes the module alone: C_Initialize in two threads at once made SoftHSM2 build its state twice, and
// processes then crashed in C_Sign or failed with CKR_OPERATION_ACTIVE / CKR_SESSION_HANDLE_INVALID) and making
// 200 RSA signatures at once. Every process must exit 0 with every signature verified.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createTestPki } from './support/harness';

const DIST = join(__dirname, '..', 'src');
const PROCESSES = 8;

describe('session threads on SoftHSM2', () => {
  it(`${PROCESSES} fresh processes, each 4 sessions and 200 concurrent RSA-2048 signatures: no crash, every signature verifies`, () => {
    const pki = createTestPki([{ name: 'thr', caKey: 'rsa-2048', responderKey: 'rsa-2048' }]);
    const ca = pki.cas[0]!;
    const child = `
const { HsmToken, NULL_OBSERVER, SILENT_LOG } = require(${JSON.stringify(join(DIST, 'hsm/token.js'))});
const { Pkcs11Signer } = require(${JSON.stringify(join(DIST, 'hsm/pkcs11-signer.js'))});
const { algorithmForPublicKey } = require(${JSON.stringify(join(DIST, 'signing/signer.js'))});
const { systemClock } = require(${JSON.stringify(join(DIST, 'clock.js'))});
const { createPublicKey, verify } = require('node:crypto');
const { readFileSync } = require('node:fs');
(async () => {
  const pub = createPublicKey(readFileSync(${JSON.stringify(ca.responderCertFile)}));
  const token = new HsmToken({ name: 'thr', describe: 'thr', modulePath: ${JSON.stringify(pki.modulePath)}, label: ${JSON.stringify(pki.tokenLabel)},
    sessions: 4, pin: async () => readFileSync(${JSON.stringify(pki.userPinFile)}, 'utf8').trim(), signTimeoutMs: 30000,
    backoff: { initialMs: 100, maxMs: 1000 }, healthCheckMs: 0, clock: systemClock, observer: NULL_OBSERVER, log: SILENT_LOG });
  const key = token.addKey({ ref: { label: ${JSON.stringify(ca.responderKeyLabel)} }, publicKey: pub, algorithm: algorithmForPublicKey(pub), describe: 'k', certDescribe: 'c' });
  await token.activate();
  const signer = new Pkcs11Signer(token, key);
  const data = Array.from({ length: 200 }, (_, i) => Buffer.alloc(100, i));
  const sigs = await Promise.all(data.map((d) => signer.sign(d)));
  const bad = sigs.filter((s, i) => !verify('sha256', data[i], pub, s)).length;
  await token.close();
  process.stdout.write(JSON.stringify({ signed: sigs.length, bad }));
})().catch((e) => { process.stderr.write(String(e && e.message)); process.exit(1); });`;
    for (let i = 0; i < PROCESSES; i++) {
      const r = spawnSync(process.execPath, ['-e', child], { env: { ...process.env, SOFTHSM2_CONF: pki.softhsmConf }, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.signal, null, `process ${i} was killed by ${r.signal}: ${r.stderr}`);
      assert.equal(r.status, 0, `process ${i}: ${r.stderr}`);
      assert.deepEqual(JSON.parse(r.stdout), { signed: 200, bad: 0 });
    }
  });
});
