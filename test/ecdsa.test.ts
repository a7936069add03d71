// Raw r||s to DER ECDSA-Sig-Value conversion, checked against node:crypto's own verifier.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { rawEcdsaToDer } from '../src/ocsp/ecdsa';

describe('rawEcdsaToDer', () => {
  for (const curve of ['prime256v1', 'secp384r1']) {
    it(`converts ${curve} signatures that node verifies (many, to hit high-bit and leading-zero cases)`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 300; i++) {
        const data = randomBytes(40);
        const raw = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        assert.equal(verify('sha256', data, publicKey, rawEcdsaToDer(raw)), true);
      }
    });
  }

  it('pads a high-bit integer and strips leading zeros', () => {
    const r = Buffer.alloc(32, 0);
    r[0] = 0x80;
    const s = Buffer.alloc(32, 0);
    s[31] = 0x05;
    const der = rawEcdsaToDer(Buffer.concat([r, s]));
    assert.equal(der.toString('hex'), '3026' + '022100' + r.toString('hex') + '020105');
  });

  it('rejects odd-length input', () => {
    assert.throws(() => rawEcdsaToDer(Buffer.alloc(63)), RangeError);
  });
});
