// Serial number canonical form and revocation reason names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseReason } from '../src/ocsp/reasons';
import { parseSerial, serialFromIntegerBytes } from '../src/ocsp/serial';

describe('serials', () => {
  it('canonicalizes operator input', () => {
    assert.equal(parseSerial('0x00ABcd'), 'abcd');
    assert.equal(parseSerial('01:a2:FF'), '1a2ff');
    assert.equal(parseSerial(' 1001 '), '1001');
    assert.equal(parseSerial('00'), '0');
  });
  it('refuses malformed serials with the input in the message', () => {
    assert.throws(() => parseSerial('xyz'), /malformed serial "xyz"/);
    assert.throws(() => parseSerial(''), /malformed serial/);
    assert.throws(() => parseSerial('12 34'), /malformed serial/);
  });
  it('reads DER INTEGER content as two\'s complement', () => {
    assert.equal(serialFromIntegerBytes(Buffer.from('00ff', 'hex')), 'ff');
    assert.equal(serialFromIntegerBytes(Buffer.from('1001', 'hex')), '1001');
    assert.equal(serialFromIntegerBytes(Buffer.from('ff', 'hex')), '-1');
    assert.equal(parseSerial(serialFromIntegerBytes(Buffer.from('0badcafe', 'hex'))), 'badcafe');
    assert.equal(serialFromIntegerBytes(Buffer.from('00', 'hex')), '0');
    assert.equal(serialFromIntegerBytes(new Uint8Array([0x00, 0x80, 0x01])), '8001');
  });
  it('gives positive serials the same form as parseSerial, for every length up to 20 octets', () => {
    for (let n = 1; n <= 20; n++) {
      const bytes = Buffer.alloc(n, 0x0f);
      bytes[0] = n % 2 ? 0x00 : 0x7f;
      assert.equal(serialFromIntegerBytes(bytes), parseSerial(bytes.toString('hex')), bytes.toString('hex'));
    }
  });
});

describe('reasons', () => {
  it('accepts RFC 5280 names case-insensitively, including OpenSSL spelling', () => {
    assert.equal(parseReason('keyCompromise'), 'keyCompromise');
    assert.equal(parseReason('CACompromise'), 'cACompromise');
    assert.equal(parseReason('SUPERSEDED'), 'superseded');
  });
  it('lists valid names when refusing', () => {
    assert.throws(() => parseReason('stolen'), /unknown revocation reason "stolen"; valid: unspecified, keyCompromise/);
  });
});
