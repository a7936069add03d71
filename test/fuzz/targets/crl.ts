// Fuzz target: the CRL reader (pki/crl.ts). CRLs from `openssl ca -gencrl` and `openssl crl -gendelta` (PEM, DER,
// two blocks), mutated as a whole, and mutated inside tbsCertList then signed again with the CA's key, so that the
// edits get past the signature check to what is read after it. It refuses with CrlError only; what it reads has
// canonical, distinct serials and valid dates.
import assert from 'node:assert/strict';
import { createPrivateKey, KeyObject, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { LoadedCertificate, readCertificate } from '../../../src/pki/certificate';
import { CrlError, crlBlocks, readCrl } from '../../../src/pki/crl';
import { FUZZ_DIR, FuzzTarget } from '../fuzz-target';
import { derBytes, derOrByteEdit, derTree } from '../der-edit';
import { BytesEdit, mutated } from '../mutate';
import { assertCanonicalSerial, assertValidDate, refusedWithAsync } from './invariants';

let ca: LoadedCertificate;
let caKey: KeyObject;

/** CertificateList with `edits` applied to its tbsCertList, signed again by the CA (ECDSA with SHA-256). */
function resigned(der: Buffer, edits: BytesEdit[], corpus: readonly Buffer[]): Buffer {
  const list = derTree(der)?.[0];
  const tbs = list?.children?.[0];
  if (!list?.children || list.children.length !== 3 || !tbs) return der;
  const newTbs = edits.reduce((b, e) => e(b, corpus), derBytes([tbs]));
  const signature = sign('sha256', newTbs, caKey);
  const bitString = Buffer.concat([Buffer.from([0]), signature]);
  const [, sigAlg] = list.children;
  const tree = derTree(newTbs);
  if (!tree || tree.length !== 1) return der;
  return derBytes([{ ...list, children: [tree[0]!, sigAlg!, { tag: 0x03, contents: bitString }] }]);
}

async function checkCrl(input: Buffer): Promise<void> {
  const blocks = await refusedWithAsync([CrlError], async () => crlBlocks(input, 'fuzz'));
  for (const block of blocks ?? []) {
    const crl = await refusedWithAsync([CrlError], () => readCrl(block, ca, 'fuzz'));
    if (!crl) continue;
    assertValidDate(crl.thisUpdate, 'thisUpdate');
    if (crl.nextUpdate) assertValidDate(crl.nextUpdate, 'nextUpdate');
    if (crl.crlNumber !== undefined) assert.ok(crl.crlNumber >= 0n, 'CRL number');
    const serials = new Set<string>();
    for (const e of crl.entries) {
      assertCanonicalSerial(e.serial);
      assert.ok(!serials.has(e.serial), `serial ${e.serial} twice`);
      serials.add(e.serial);
      assertValidDate(e.revokedAt, `revocationDate of ${e.serial}`);
    }
  }
}

export const crlTarget: FuzzTarget = {
  name: 'crl',
  ext: 'der',
  async start() {
    ca = readCertificate(join(FUZZ_DIR, 'pki/ca.pem'));
    caKey = createPrivateKey(readFileSync(join(FUZZ_DIR, 'pki/ca.key')));
  },
  arbitrary: (corpus) => {
    // The DER CRLs of the corpus, for the edits signed again (a finding may have no PEM block left).
    const ders = corpus.flatMap((c) => {
      try {
        return crlBlocks(c, 'corpus');
      } catch {
        return [];
      }
    });
    return fc.oneof(
      { arbitrary: mutated(corpus, derOrByteEdit), weight: 1 },
      {
        arbitrary: fc
          .tuple(fc.constantFrom(...ders), fc.array(derOrByteEdit, { minLength: 1, maxLength: 6 }))
          .map(([der, edits]) => resigned(der, edits, ders)),
        weight: 3,
      },
    );
  },
  check: checkCrl,
};
