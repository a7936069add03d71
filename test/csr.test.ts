// The OCSP responder CSR: openssl accepts its signature and extensions, and `openssl x509 -req -copy_extensions`
// turns it into a certificate the daemon's delegated-responder checks accept. The token twin is native-test/keys.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { csrToPem, ocspResponderCsr } from '../src/pki/csr';
import { parseSubject } from '../src/pki/subject';
import { OID } from '../src/ocsp/oids';
import { softwareSigner } from './support/key-signer';
import { makeOpensslPki, openssl } from './support/openssl';
import { tempDir } from './support/temp';

describe('subject parsing', () => {
  it('reads openssl -subj syntax, in order, with escapes', () => {
    assert.deepEqual(parseSubject('/C=DE/O=Example\\/Sub/CN=OCSP responder'), [
      { name: 'C', value: 'DE' },
      { name: 'O', value: 'Example/Sub' },
      { name: 'CN', value: 'OCSP responder' },
    ]);
  });

  it('refuses what it cannot encode, naming the part', () => {
    assert.throws(() => parseSubject('CN=x'), /must start with "\/"/);
    assert.throws(() => parseSubject('/CN'), /"CN" in the subject is not NAME=VALUE/);
    assert.throws(() => parseSubject('/XX=1/CN=a'), /unknown subject attribute "XX"/);
    assert.throws(() => parseSubject('/CN='), /subject attribute CN is empty/);
    assert.throws(() => parseSubject('/C=Germany/CN=a'), /C="Germany" is not a two-letter country code/);
    assert.throws(() => parseSubject('/OU=x'), /needs at least CN= or O=/);
  });
});

describe('OCSP responder CSR', () => {
  for (const kind of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    it(`${kind}: openssl req -verify accepts it and shows the requested extensions`, async () => {
      const signer = softwareSigner(kind);
      const der = await ocspResponderCsr({ subject: parseSubject('/O=Example/CN=OCSP Responder 1'), publicKey: signer.publicKey, signer });
      const dir = tempDir('csr');
      const file = join(dir, 'req.csr');
      writeFileSync(file, csrToPem(der));
      const text = openssl(['req', '-in', file, '-verify', '-noout', '-text']);
      assert.match(text, /(verify OK|Certificate request self-signature verify OK)/);
      assert.match(text, /Subject: O = Example, CN = OCSP Responder 1/);
      assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
      assert.match(text, /X509v3 Extended Key Usage:\s+OCSP Signing\n/);
      assert.match(text, /OCSP No Check/);
      // The public key in the request is the signer's.
      const pub = openssl(['req', '-in', file, '-noout', '-pubkey']);
      assert.equal(pub.trim(), signer.publicKey.export({ type: 'spki', format: 'pem' }).toString().trim());
    });
  }

  it('openssl x509 -req -copy_extensions copy issues a delegated responder certificate from it', async () => {
    const pki = makeOpensslPki('CSR Test CA');
    const signer = softwareSigner('ec-p256');
    const csr = join(pki.dir, 'responder.csr');
    writeFileSync(csr, csrToPem(await ocspResponderCsr({ subject: parseSubject('/CN=responder'), publicKey: signer.publicKey, signer })));
    const certFile = join(pki.dir, 'responder.pem');
    openssl(['x509', '-req', '-in', csr, '-CA', pki.caCert, '-CAkey', pki.caKey, '-copy_extensions', 'copy', '-days', '30', '-set_serial', '7', '-out', certFile]);
    const cert = new X509Certificate(openssl(['x509', '-in', certFile]));
    assert.ok(cert.keyUsage?.includes(OID.kpOcspSigning), 'id-kp-OCSPSigning copied from the request');
    assert.ok(cert.publicKey.equals(signer.publicKey));
    assert.match(openssl(['x509', '-in', certFile, '-noout', '-text']), /OCSP No Check/);
  });
});
