// Every supported key type signing inside SoftHSM2, delegated and CA-direct, byKey and byName, verified by openssl.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestPki, opensslQuery, Responder, startResponder, TestPki, variantConfig } from './support/harness';

describe('key types and signer bindings', () => {
  let pki: TestPki;
  let responder: Responder;

  before(async () => {
    pki = createTestPki([
      { name: 'p384', caKey: 'ec-p384', responderKey: 'ec-p384' },
      { name: 'rsa', caKey: 'rsa-2048', responderKey: 'rsa-2048' },
      { name: 'direct', caKey: 'ec-p256' },
      { name: 'rsadirect', caKey: 'rsa-2048' },
    ]);
    // One CA answers byName to prove both ResponderID forms reach clients.
    const config = variantConfig(pki, 'mixed', (cfg) => {
      cfg.cas[1].responderId = 'byName';
    });
    responder = await startResponder(pki, { config });
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  const cases = [
    ['ECDSA P-384 delegated responder (SHA-384)', 0, /Signature Algorithm: ecdsa-with-SHA384/],
    ['RSA-2048 delegated responder, ResponderID byName', 1, /Signature Algorithm: sha256WithRSAEncryption/],
    ['ECDSA P-256 CA signing directly', 2, /Signature Algorithm: ecdsa-with-SHA256/],
    ['RSA-2048 CA signing directly', 3, /Signature Algorithm: sha256WithRSAEncryption/],
  ] as const;
  for (const [name, i, sigAlg] of cases) {
    it(`${name}: good/revoked/unknown verified by openssl`, () => {
      const ca = pki.cas[i]!;
      const out = opensslQuery(ca, responder.url, [ca.good.file, ca.revoked.file, ca.unissued.file], ['-sha256', '-nonce', '-resp_text']);
      assert.match(out, /Response verify OK/);
      assert.match(out, sigAlg);
      assert.match(out, new RegExp(`${ca.good.file}: good`));
      assert.match(out, new RegExp(`${ca.revoked.file}: revoked`));
      assert.match(out, new RegExp(`${ca.unissued.file}: unknown`));
      if (i === 1) assert.match(out, /Responder Id: .*CN ?= ?rsa OCSP Responder/);
      else assert.match(out, /Responder Id: [0-9A-F]{40}\n/);
      // A delegated responder sends its own certificate; a root CA signing directly sends itself (EJBCA's rule).
      assert.match(out, /Certificate:\n\s+Data:/);
    });
  }
});
