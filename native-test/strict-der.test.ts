// Strict DER on the wire (issue 16): non-DER variants of a real request get a malformedRequest that Python
// cryptography loads, over POST and GET; the DER forms (hash parameters NULL or absent) are answered with their
// CertID echoed as sent, in responses that pyca loads and `openssl ocsp -CAfile` verifies and matches.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serialIntegerBytes } from '../src/ocsp/cert-id';
import { TAG, tlv } from '../src/ocsp/tlv';
import { issuerHashes, readCertificate } from '../src/pki/certificate';
import { certIdDer, extensions, hex, nonceExtension, rawRequest, RawRequestSpec } from '../test/support/raw-requests';
import { createTestPki, opensslQuery, Responder, ROOT, startResponder, TestCa, TestPki } from './support/harness';

const PY = join(ROOT, 'native-test/clients/py_load_responses.py');

type Loaded = { response_status?: string; certificate_status?: string; serial?: string; hash?: string; error?: string };

describe('strict DER against the daemon, read back by pyca/cryptography and openssl', () => {
  let pki: TestPki;
  let ca: TestCa;
  let responder: Responder;
  let good: RawRequestSpec;

  before(async () => {
    pki = createTestPki([{ name: 'delta', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    responder = await startResponder(pki);
    const { nameHash, keyHash } = issuerHashes(readCertificate(ca.caCertFile), 'sha1');
    // The good leaf's serial is 0x1001: its padded form is the 02 03 00 10 01 of the issue.
    good = { issuerNameHash: nameHash, issuerKeyHash: keyHash, serial: tlv(TAG.integer, serialIntegerBytes(ca.good.serial)) };
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  const ask = async (method: 'GET' | 'POST', der: Buffer): Promise<Buffer> => {
    const r = method === 'POST'
      ? await fetch(responder.url, { method, body: der, headers: { 'content-type': 'application/ocsp-request' }, signal: AbortSignal.timeout(10_000) })
      : await fetch(`${responder.url}/${encodeURIComponent(der.toString('base64'))}`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(r.status, 200);
    return Buffer.from(await r.arrayBuffer());
  };

  /** Writes the answers to files and loads them all in one python3 run. */
  const pyLoad = (name: string, answers: Buffer[]): Loaded[] => {
    const files = answers.map((a, i) => {
      const f = join(pki.dir, `${name}-${i}.der`);
      writeFileSync(f, a);
      return f;
    });
    const r = spawnSync('/usr/bin/python3', [PY, ...files], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Loaded[];
  };

  it('answers each non-DER variant malformedRequest over POST and GET, in answers pyca loads', async () => {
    const variants: [string, RawRequestSpec][] = [
      ['parameters an OCTET STRING', { ...good, hashParams: hex('04 00') }],
      ['parameters a SEQUENCE', { ...good, hashParams: hex('30 03 020101') }],
      ['serial 02 03 00 10 01', { ...good, serial: hex('02 03 001001') }],
      ['version v1 written out', { ...good, version: hex('a0 03 020100') }],
      ['nonce critical FALSE written out', { ...good, requestExtensions: extensions(2, nonceExtension(Buffer.alloc(16, 7), hex('01 01 00'))) }],
    ];
    assert.deepEqual(good.serial, hex('02 02 1001'), 'the fixture is the issue\'s serial');
    const sent: string[] = [];
    const answers: Buffer[] = [];
    for (const [name, spec] of variants) {
      for (const method of ['POST', 'GET'] as const) {
        sent.push(`${method} ${name}`);
        answers.push(await ask(method, rawRequest(spec)));
      }
    }
    const loaded = pyLoad('malformed', answers);
    assert.deepEqual(Object.fromEntries(loaded.map((l, i) => [sent[i], l])), Object.fromEntries(sent.map((s) => [s, { response_status: 'MALFORMED_REQUEST' }])));
    const stillServes = opensslQuery(ca, responder.url, [ca.good.file]);
    assert.match(stillServes, /Response verify OK/);
    assert.match(stillServes, /: good/);
  });

  it('answers the DER forms (parameters NULL or absent) with the CertID echoed as sent; pyca loads it, openssl verifies and matches it', async () => {
    const forms: [string, RawRequestSpec][] = [['NULL', good], ['absent', { ...good, hashParams: Buffer.alloc(0) }]];
    for (const [name, spec] of forms) {
      const answers = [await ask('POST', rawRequest(spec)), await ask('GET', rawRequest(spec))];
      for (const a of answers) assert.ok(a.includes(certIdDer(spec)), `${name}: the CertID is echoed byte for byte`);
      assert.deepEqual(pyLoad(`der-${name}`, answers), answers.map(() => ({ response_status: 'SUCCESSFUL', certificate_status: 'GOOD', serial: '1001', hash: 'sha1' })));
      // openssl builds its own CertID (parameters NULL) and looks it up in the response (OCSP_resp_find).
      const file = join(pki.dir, `der-${name}.der`);
      writeFileSync(file, answers[0]!);
      const r = spawnSync('openssl', ['ocsp', '-respin', file, '-issuer', ca.caCertFile, '-cert', ca.good.file, '-CAfile', ca.caCertFile, '-no_nonce'], { encoding: 'utf8', timeout: 30_000 });
      const out = r.stdout + r.stderr;
      assert.equal(r.status, 0, out);
      assert.match(out, /Response verify OK/, name);
      assert.match(out, new RegExp(`${ca.good.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: good`), name);
    }
  });
});
