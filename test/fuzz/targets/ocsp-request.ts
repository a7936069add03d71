// Fuzz target: the DER OCSPRequest parser (ocsp/request.ts), with requests from openssl and GnuTLS mutated element
// by element. It may refuse with MalformedRequestError only; what it accepts is within the limits.
import assert from 'node:assert/strict';
import { MalformedRequestError } from '../../../src/ocsp/errors';
import { parseOcspRequest } from '../../../src/ocsp/request';
import { readSingle, TAG } from '../../../src/ocsp/tlv';
import type { FuzzTarget } from '../fuzz-target';
import { derOrByteEdit } from '../der-edit';
import { mutated } from '../mutate';
import { assertCanonicalSerial, refusedWith } from './invariants';

export const LIMITS = { maxCertIds: 20 };

/** Checks what the parser made of `der`; undefined when it refused it as it should. */
export function checkRequest(der: Buffer) {
  const r = refusedWith([MalformedRequestError], () => parseOcspRequest(der, LIMITS));
  if (!r) return undefined;
  assert.ok(r.certIds.length >= 1 && r.certIds.length <= LIMITS.maxCertIds, `${r.certIds.length} CertIDs`);
  for (const c of r.certIds) {
    assertCanonicalSerial(c.serial);
    assert.equal(readSingle(c.certIdDer).tag, TAG.sequence, 'the echoed CertID is one SEQUENCE');
  }
  if (r.nonce) {
    // RFC 9654 section 2.1: the extnValue is an OCTET STRING of 1..128 octets.
    const inner = readSingle(r.nonce);
    assert.ok(inner.tag === TAG.octetString && inner.contentLength >= 1 && inner.contentLength <= 128, 'nonce');
  }
  return r;
}

export const ocspRequestTarget: FuzzTarget = {
  name: 'ocsp-request',
  ext: 'der',
  arbitrary: (corpus) => mutated(corpus, derOrByteEdit),
  check: (input) => void checkRequest(input),
};
