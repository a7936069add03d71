// Interop with clients we did not write: GnuTLS ocsptool and Python cryptography (Debian packages).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestPki, Responder, ROOT, startResponder, TestCa, TestPki } from './support/harness';

const PY = join(ROOT, 'native-test/clients/py_ocsp_check.py');

describe('GnuTLS ocsptool and Python cryptography against the daemon', () => {
  let pki: TestPki;
  let ca: TestCa;
  let responder: Responder;

  before(async () => {
    pki = createTestPki([{ name: 'gamma', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    responder = await startResponder(pki);
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  for (const [leaf, status] of [['good', 'good'], ['revoked', 'revoked'], ['unissued', 'unknown']] as const) {
    it(`ocsptool verifies the ${leaf} certificate's answer (${status}) with a nonce`, () => {
      const r = spawnSync('ocsptool', [`--ask=${responder.url}`, `--load-issuer=${ca.caCertFile}`, `--load-cert=${ca[leaf].file}`, `--load-trust=${ca.caCertFile}`, '--nonce', '--outpem'], { encoding: 'utf8', timeout: 30_000 });
      const out = r.stdout + r.stderr;
      assert.equal(r.status, 0, out);
      assert.match(out, new RegExp(`Certificate Status: ${status}`));
      assert.match(out, /Nonce: [0-9a-f]+/);
      assert.match(out, /Verifying OCSP Response: Success\./);
    });
  }

  // /usr/bin/python3 on purpose: Debian's python3-cryptography, not a pip install.
  const py = (leaf: 'good' | 'revoked' | 'unissued', method: 'GET' | 'POST', hash: 'sha1' | 'sha256', nonce: boolean, url = responder.url) => {
    const r = spawnSync('/usr/bin/python3', [PY, url, ca.caCertFile, ca[leaf].file, method, hash, nonce ? 'nonce' : 'no-nonce'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  for (const method of ['POST', 'GET'] as const) {
    for (const hash of ['sha1', 'sha256'] as const) {
      it(`Python cryptography ${method} with ${hash} CertIDs: statuses, signature, responder key hash`, () => {
        const good = py('good', method, hash, method === 'POST');
        assert.equal(good.status, 'GOOD');
        assert.equal(good.hash, hash);
        assert.equal(good.signature_verified, true);
        assert.equal(good.responder_key_hash_ok, true);
        assert.equal(good.content_type, 'application/ocsp-response');
        if (method === 'POST') assert.equal(good.nonce_ok, true);
        const revoked = py('revoked', method, hash, false);
        assert.equal(revoked.status, 'REVOKED');
        assert.equal(revoked.reason, 'key_compromise');
        assert.equal(new Date(revoked.revocation_time + 'Z').toISOString(), pki.revokedAt);
        const unknown = py('unissued', method, hash, false);
        assert.equal(unknown.status, 'UNKNOWN');
        assert.equal(unknown.serial, ca.unissued.serial);
      });
    }
  }

  it('Python cryptography through the path prefix', () => {
    assert.equal(py('good', 'GET', 'sha256', false, responder.url + '/ocsp').status, 'GOOD');
  });
});
