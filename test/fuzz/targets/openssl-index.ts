// Fuzz target: the index.txt reader (pki/openssl-index.ts), with databases written by `openssl ca` edited line by
// line, field by field and character by character. It refuses with IndexParseError only; what it reads has
// canonical, distinct serials and valid dates.
import assert from 'node:assert/strict';
import { IndexParseError, parseOpensslIndex } from '../../../src/pki/openssl-index';
import type { FuzzTarget } from '../fuzz-target';
import { mutated, textEdit } from '../mutate';
import { assertCanonicalSerial, assertValidDate, refusedWith } from './invariants';

const DICTIONARY = [
  '\t', '\n', '\r\n', '\r', 'V', 'R', 'E', 'X', ',', ',,', 'keyCompromise', 'keyTime', 'CAkeyTime', 'holdInstruction',
  'holdInstructionReject', 'removeFromCRL', 'unknownReason', 'KEYCOMPROMISE', 'constructor', '__proto__', '991231235959Z',
  '20991231235959Z', '000000000000Z', '500101000000Z', '491231235959Z', '260230000000Z', '261231246000Z', '00', '-1',
  '0x', 'ff'.repeat(41), ':', 'unknown', '/CN=x',
];

function checkIndex(text: string): void {
  const records = refusedWith([IndexParseError], () => parseOpensslIndex(text, 'fuzz'));
  if (!records) return;
  const serials = new Set<string>();
  for (const r of records) {
    assertCanonicalSerial(r.serial);
    assert.ok(!serials.has(r.serial), `serial ${r.serial} twice`);
    serials.add(r.serial);
    assertValidDate(r.notAfter, 'notAfter');
    if (r.status === 'revoked') assertValidDate(r.revokedAt, 'revokedAt');
    else assert.equal(r.status, 'good');
  }
}

export const opensslIndexTarget: FuzzTarget = {
  name: 'openssl-index',
  ext: 'txt',
  arbitrary: (corpus) => mutated(corpus.map((c) => c.toString('utf8')), textEdit(DICTIONARY)).map((s) => Buffer.from(s, 'utf8')),
  check: (input) => checkIndex(input.toString('utf8')),
};
