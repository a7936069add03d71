// responseProblems on responses signed with each supported key type: a genuine one has no problem, one whose
// signature or signer is not the binding's is reported, a broken encoding is reported rather than thrown.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../src/clock';
import { responseProblems } from '../src/check/response-check';
import { makeAuthority } from '../src/source/authority';
import { ResponseProducer } from '../src/source/response-producer';
import type { CertificateRecord } from '../src/store/status-store';
import { softwarePki } from './support/software-pki';

describe('responseProblems', () => {
  for (const kind of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    it(`${kind}: a genuine response passes, a changed signature or another signer does not`, async () => {
      const pki = await softwarePki(kind);
      const other = await softwarePki(kind);
      const clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
      const a = makeAuthority({ name: 'u', caCert: pki.ca, signerCert: pki.responder, signer: pki.responderSigner, responderId: 'byKey', validityMs: 3_600_000 });
      const rec: CertificateRecord = { ca: 'u', serial: '1001', status: 'good', version: 1 };
      const r = await new ResponseProducer(clock, { putResponses: async () => ({ stored: 0, skippedFinal: 0, stale: 0 }) }).produce(a, rec, 'sha1', { lane: 'live' });
      const binding = { caCert: pki.ca, signerCert: pki.responder };
      assert.deepEqual(await responseProblems(r, rec, binding), []);
      const tampered = Buffer.from(r.der);
      const sigAt = r.der.indexOf(pki.responder.der) - 9; // the signature's last byte: before [0] { SEQUENCE { cert } } (two 4-byte headers)
      tampered[sigAt] = tampered[sigAt]! ^ 1;
      assert.match((await responseProblems({ ...r, der: tampered }, rec, binding)).join(), /signature does not verify/);
      const problems = await responseProblems(r, rec, { caCert: pki.ca, signerCert: other.responder });
      assert.match(problems.join(), /signature does not verify.*responderID does not name the signer.*does not carry the signer certificate/);
      assert.match((await responseProblems({ ...r, der: r.der.subarray(0, r.der.length - 1) }, rec, binding)).join(), /not a successful basic OCSP response/);
    });
  }
});
