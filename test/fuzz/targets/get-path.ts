// Fuzz target: GET path decoding (http/get-path.ts) and the request parser behind it. Paths as clients send them,
// edited as text, and mutated requests encoded in each form clients use. Decoding refuses with
// MalformedRequestError only, and a SEQUENCE it decodes decodes the same from every other encoding of it.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeGetPath } from '../../../src/http/get-path';
import { MalformedRequestError } from '../../../src/ocsp/errors';
import { corpusOf, FuzzTarget } from '../fuzz-target';
import { derOrByteEdit } from '../der-edit';
import { mutated, textEdit } from '../mutate';
import { refusedWith } from './invariants';
import { checkRequest } from './ocsp-request';

/** The encodings of a request in a GET path (RFC 6960 appendix A.1, RFC 9919 section 6, and what clients do). */
export const GET_FORMS: Record<string, (der: Buffer) => string> = {
  raw: (d) => d.toString('base64'),
  percent: (d) => encodeURIComponent(d.toString('base64')),
  base64url: (d) => d.toString('base64url'),
  plusAsSpace: (d) => d.toString('base64').replace(/\+/g, ' '),
  unpadded: (d) => d.toString('base64').replace(/=+$/, ''),
};

const DICTIONARY = ['%', '%2F', '%2B', '%3D', '%2f', '%zz', '%C3%A9', '%E0%A4%A', '%00', '=', '==', '/', '//', '+', ' ', '-', '_', '?', '#', 'A', 'é', '\u{1F600}'];

export function requestPaths(): fc.Arbitrary<string> {
  const requests = corpusOf('ocsp-request').map((c) => c.bytes);
  return fc
    .tuple(mutated(requests, derOrByteEdit), fc.constantFrom(...Object.keys(GET_FORMS)), fc.constantFrom('/', '//', ''))
    .map(([der, form, prefix]) => prefix + GET_FORMS[form]!(der));
}

export function checkGetPath(path: string): void {
  const der = refusedWith([MalformedRequestError], () => decodeGetPath(path));
  if (!der) return;
  // Every OCSPRequest is a SEQUENCE (0x30), whose base64 starts with "M": other bytes may lose a leading "/" of
  // their base64 to the slashes stripped before it, which only turns garbage into other garbage.
  for (const [form, encode] of Object.entries(GET_FORMS)) {
    if (der[0] !== 0x30) break;
    assert.deepEqual(decodeGetPath('/' + encode(der)), der, `the ${form} encoding of what "${path}" decodes to decodes differently`);
  }
  checkRequest(der);
}

export const getPathTarget: FuzzTarget = {
  name: 'get-path',
  ext: 'txt',
  arbitrary: (corpus) =>
    fc.oneof(mutated(corpus.map((c) => c.toString('utf8')), textEdit(DICTIONARY)), requestPaths()).map((s) => Buffer.from(s, 'utf8')),
  check: (input) => checkGetPath(input.toString('utf8')),
};
