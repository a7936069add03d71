// Contract every Signer must honour; run on a software key (test/) and on SoftHSM2 (native-test/).
import assert from 'node:assert/strict';
import { KeyObject, randomBytes, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import type { Signer } from '../../src/signing/signer';

export interface SignerUnderTest {
  signer: Signer;
  publicKey: KeyObject;
}

export function describeSigner(name: string, make: () => Promise<SignerUnderTest>): void {
  describe(`Signer contract: ${name}`, () => {
    it('produces signatures the public key verifies, and rejects tampered data', async () => {
      const { signer, publicKey } = await make();
      const data = randomBytes(300);
      const sig = await signer.sign(data);
      assert.equal(verify(signer.algorithm.hash, data, publicKey, sig), true);
      const tampered = Buffer.from(data);
      tampered[0] ^= 1;
      assert.equal(verify(signer.algorithm.hash, tampered, publicKey, sig), false);
    });

    it('returns DER ECDSA-Sig-Value for EC keys', async () => {
      const { signer } = await make();
      if (signer.algorithm.keyType !== 'ec') return;
      for (let i = 0; i < 20; i++) {
        const sig = await signer.sign(randomBytes(32));
        const parsed = asn1js.fromBER(sig);
        assert.equal(parsed.offset, sig.length, 'no trailing bytes');
        assert.ok(parsed.result instanceof asn1js.Sequence);
        const ints = (parsed.result as asn1js.Sequence).valueBlock.value;
        assert.equal(ints.length, 2);
        for (const n of ints) {
          assert.ok(n instanceof asn1js.Integer);
          const v = (n as asn1js.Integer).valueBlock.valueHexView;
          assert.equal(v[0]! & 0x80, 0, 'INTEGER must be positive');
          if (v.length > 1) assert.ok(v[0] !== 0 || (v[1]! & 0x80) !== 0, 'minimal INTEGER encoding');
        }
      }
    });

    it('signs concurrently without mixing results', async () => {
      const { signer, publicKey } = await make();
      const inputs = Array.from({ length: 32 }, () => randomBytes(64));
      const sigs = await Promise.all(inputs.map((d) => signer.sign(d)));
      sigs.forEach((sig, i) => assert.equal(verify(signer.algorithm.hash, inputs[i]!, publicKey, sig), true));
    });
  });
}
