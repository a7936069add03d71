// Malformed and hostile input on the wire: each gets the right OCSP error, and the daemon keeps serving.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { makeOpensslPki } from '../test/support/openssl';
import { createTestPki, opensslQuery, Responder, startResponder, TestCa, TestPki } from './support/harness';

/** Raw HTTP exchange (fetch aborts uploads the server refuses early); bounded by a timeout. */
function exchange(url: string, method: string, path: string, body?: Buffer, type = 'application/ocsp-request'): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method, headers: body ? { 'content-type': type, 'content-length': body.length } : {}, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    // The server may answer and close before a huge upload finishes: that is not a client failure.
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    if (body) req.end(body);
    else req.end();
  });
}

function ocspStatus(der: Buffer): number {
  return pkijs.OCSPResponse.fromBER(der).responseStatus.valueBlock.valueDec;
}

describe('malformed requests against the daemon', () => {
  let pki: TestPki;
  let ca: TestCa;
  let responder: Responder;
  let validReq: Buffer;

  before(async () => {
    pki = createTestPki([{ name: 'beta', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    responder = await startResponder(pki);
    const f = join(pki.dir, 'valid.der');
    spawnSync('openssl', ['ocsp', '-issuer', ca.caCertFile, '-cert', ca.good.file, '-no_nonce', '-reqout', f]);
    validReq = readFileSync(f);
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  const stillServes = () => {
    const out = opensslQuery(ca, responder.url, [ca.good.file]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: good/);
  };

  const cases: [string, () => Promise<{ status: number; body: Buffer }>, number, number][] = [
    ['garbage body', () => exchange(responder.url, 'POST', '/', Buffer.from('this is not DER at all')), 200, 1],
    ['empty body', () => exchange(responder.url, 'POST', '/', Buffer.alloc(0)), 200, 1],
    ['truncated DER', () => exchange(responder.url, 'POST', '/', validReq.subarray(0, validReq.length - 7)), 200, 1],
    ['1 MB body', () => exchange(responder.url, 'POST', '/', Buffer.alloc(1024 * 1024, 0x30)), 413, 1],
    ['bad base64 GET', () => exchange(responder.url, 'GET', '/ocsp/%%%not-base64!!'), 200, 1],
    ['GET of base64 garbage', () => exchange(responder.url, 'GET', '/' + Buffer.from('garbage').toString('base64')), 200, 1],
    ['wrong content type', () => exchange(responder.url, 'POST', '/', validReq, 'application/x-www-form-urlencoded'), 415, 1],
    ['wrong method', () => exchange(responder.url, 'DELETE', '/'), 405, 1],
  ];
  for (const [name, send, httpStatus, ocsp] of cases) {
    it(`answers ${name} with HTTP ${httpStatus} and OCSP status ${ocsp}, then keeps serving`, async () => {
      const r = await send();
      assert.equal(r.status, httpStatus);
      assert.equal(ocspStatus(r.body), ocsp);
      stillServes();
    });
  }

  it('answers an issuer it does not serve with unauthorized (openssl sees it)', () => {
    const other = makeOpensslPki('Stranger CA');
    const r = spawnSync('openssl', ['ocsp', '-issuer', other.caCert, '-cert', other.leafCert, '-CAfile', other.caCert, '-url', responder.url, '-timeout', '10'], { encoding: 'utf8' });
    assert.match(r.stdout + r.stderr, /Responder Error: unauthorized \(6\)/);
    stillServes();
  });

  it('survives a burst of mixed garbage and valid requests', async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => exchange(responder.url, 'POST', '/', i % 2 ? validReq : Buffer.from([0x30, 0x82, 0xff, 0xff, i]))),
    );
    results.forEach((r, i) => assert.equal(ocspStatus(r.body), i % 2 ? 0 : 1));
    stillServes();
  });
});
