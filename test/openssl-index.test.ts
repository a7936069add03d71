// OpenSSL index.txt parsing: every status and reason form, and errors that name the line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IndexParseError, parseIndexTime, parseOpensslIndex } from '../src/pki/openssl-index';

const line = (...f: string[]) => f.join('\t');
const sample = [
  line('V', '271121073233Z', '', '1001', 'unknown', '/CN=good'),
  line('R', '271121073233Z', '261120100000Z,keyCompromise', '1002', 'unknown', '/CN=revoked'),
  line('R', '271121073233Z', '261120100000Z,CACompromise', '1003', 'unknown', '/CN=ca-compromise'),
  line('R', '271121073233Z', '261120100000Z,keyTime,20261101000000Z', '1004', 'unknown', '/CN=keytime'),
  line('R', '271121073233Z', '261120100000Z,holdInstruction,1.2.840.10040.2.2', '1005', 'unknown', '/CN=hold'),
  line('R', '271121073233Z', '261120100000Z', '1006', 'unknown', '/CN=no-reason'),
  line('E', '201121073233Z', '', '0A', 'unknown', '/CN=expired'),
  '',
].join('\n');

describe('parseOpensslIndex', () => {
  it('reads valid, revoked (with each reason form) and expired entries', () => {
    const recs = parseOpensslIndex(sample, 'ca1');
    assert.equal(recs.length, 7);
    assert.deepEqual(recs[0], { ca: 'ca1', serial: '1001', status: 'good', notAfter: new Date('2027-11-21T07:32:33Z') });
    assert.equal(recs[1]!.status, 'revoked');
    assert.deepEqual(recs[1]!.revokedAt, new Date('2026-11-20T10:00:00Z'));
    assert.deepEqual(recs.slice(1, 6).map((r) => r.reason), ['keyCompromise', 'cACompromise', 'keyCompromise', 'certificateHold', undefined]);
    assert.equal(recs[6]!.status, 'good', 'expired certificates keep their real status');
    assert.equal(recs[6]!.serial, 'a');
  });

  for (const [name, text, pattern] of [
    ['too few fields', line('V', '271121073233Z', '', '1001'), /index.txt:1: expected 6 tab-separated fields/],
    ['a bad flag', line('X', '271121073233Z', '', '1001', 'unknown', '/CN=x'), /:1: unknown status flag "X"/],
    ['a bad serial', line('V', '271121073233Z', '', 'zz', 'unknown', '/CN=x'), /:1: malformed serial "zz"/],
    ['a bad date', line('V', '27112107Z', '', '10', 'unknown', '/CN=x'), /:1: malformed time/],
    ['an unknown reason', line('R', '271121073233Z', '261120100000Z,stolen', '10', 'unknown', '/CN=x'), /:1: unknown revocation reason "stolen"/],
    ['a revoked entry without date', line('R', '271121073233Z', '', '10', 'unknown', '/CN=x'), /:1: revoked entry without a revocation date/],
    ['a duplicate serial', sample + line('V', '271121073233Z', '', '1001', 'unknown', '/CN=dup'), /:8: serial 1001 appears twice/],
  ] as const) {
    it(`refuses ${name}, naming the line`, () => {
      assert.throws(() => parseOpensslIndex(text, 'ca1'), (e: unknown) => e instanceof IndexParseError && pattern.test((e as Error).message));
    });
  }

  it('reads four-digit years and rejects impossible dates', () => {
    assert.deepEqual(parseIndexTime('20500101000000Z'), new Date('2050-01-01T00:00:00Z'));
    assert.throws(() => parseIndexTime('261345000000Z'), /invalid date/);
  });
});
