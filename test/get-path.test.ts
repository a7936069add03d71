// GET path decoding (RFC 6960 appendix A.1): every encoding clients and proxies produce in the wild.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeGetPath } from '../src/http/get-path';
import { MalformedRequestError } from '../src/ocsp/errors';

// Bytes chosen so the base64 holds '+', '/' and needs padding: fb ff bf -> "+/+/", fb ef -> "++8=".
const bytes = Buffer.from([0xfb, 0xff, 0xbf, 0xfb, 0xef]);
const b64 = bytes.toString('base64');

describe('decodeGetPath', () => {
  it('sanity: the fixture really contains +, / and padding', () => {
    assert.equal(b64, '+/+/++8=');
  });
  const cases: [string, string][] = [
    ['raw base64 with / and +', '/' + b64],
    ['fully percent-encoded', '/' + encodeURIComponent(b64)],
    ['%2F and %2f for /', '/' + b64.replace(/\//g, '%2F').replace('%2F', '%2f')],
    ['%2B for +, %3D for =', '/' + b64.replace(/\+/g, '%2B').replace('=', '%3D')],
    ['padding missing', '/' + b64.replace(/=+$/, '')],
    ['+ turned into a space by a form encoder', '/' + b64.replace(/\+/g, '%20')],
    ['base64url alphabet', '/' + bytes.toString('base64url')],
    ['doubled leading slash', '//' + b64],
    ['both alphabets mixed', '/' + bytes.toString('base64url').slice(0, 4) + b64.slice(4)],
  ];
  for (const [name, path] of cases) {
    it(`decodes ${name}`, () => assert.deepEqual(decodeGetPath(path), bytes));
  }
  it('decodes a long (> 255 byte) path', () => {
    const big = Buffer.alloc(600, 7);
    assert.deepEqual(decodeGetPath('/' + encodeURIComponent(big.toString('base64'))), big);
  });
  for (const [name, path] of [
    ['empty path', '/'],
    ['characters outside base64', '/abc$def'],
    ['broken percent-encoding', '/abc%zz'],
    ['impossible length (4n+1)', '/abcde'],
    ['padding inside the data', '/ab=c'],
    ['only padding', '/=='],
  ]) {
    it(`refuses ${name}`, () => assert.throws(() => decodeGetPath(path!), MalformedRequestError));
  }
});
