// The stress tool's parts: request builder (checked by our parser, pkijs and openssl), response summary,
// reservoir sampling, percentiles, and the verifier against responses signed with software keys.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Signer } from '../src/signing/signer';
import { encode } from '../src/ocsp/der';
import { OID } from '../src/ocsp/oids';
import { parseOcspRequest } from '../src/ocsp/request';
import { CertStatus, encodeCerts, encodeResponderId, encodeResponseData, encodeSuccessfulResponse } from '../src/ocsp/response';
import { ERROR_RESPONSES } from '../src/ocsp/status-responses';
import { TAG, tlv } from '../src/ocsp/tlv';
import { issuerHashes, LoadedCertificate, responderKeyHash } from '../src/pki/certificate';
import { issueCertificate } from '../src/pki/issue';
import { BenchStats, percentile } from '../src/stress/report';
import { BuiltRequest, RequestBuilder } from '../src/stress/request-builder';
import { Reservoir } from '../src/stress/reservoir';
import { summarizeResponse } from '../src/stress/response-summary';
import { serialsFromFile } from '../src/stress/targets';
import { verifyResponse } from '../src/stress/verifier';
import { softwareSigner } from './support/key-signer';
import { softwarePki, SoftwarePki } from './support/software-pki';
import { tempDir } from './support/temp';

const NOW = new Date();
const HOUR = 3_600_000;

interface SignOptions {
  signer: Signer;
  signerCert: LoadedCertificate;
  certs?: LoadedCertificate[];
  certIdDer: Buffer;
  status?: CertStatus;
  nonceValue?: Buffer;
  nextUpdate?: Date;
}

/** A response as the responder builds it (same encoders), signed with a software key. */
async function signedResponse(o: SignOptions): Promise<Buffer> {
  const tbs = encodeResponseData({
    responderIdDer: encodeResponderId({ byKey: responderKeyHash(o.signerCert) }),
    producedAt: NOW,
    responses: [{ certIdDer: o.certIdDer, status: o.status ?? { kind: 'good' }, thisUpdate: NOW, nextUpdate: o.nextUpdate ?? new Date(NOW.getTime() + HOUR) }],
    ...(o.nonceValue ? { nonce: tlv(TAG.octetString, o.nonceValue) } : {}),
  });
  const alg = encode(new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: o.signer.algorithm.oid })] }));
  return encodeSuccessfulResponse({
    tbs,
    signatureAlgorithmDer: alg,
    signature: await o.signer.sign(tbs),
    ...(o.certs?.length ? { certsDer: encodeCerts(o.certs.map((c) => c.der)) } : {}),
  });
}

describe('RequestBuilder', () => {
  let pki: SoftwarePki;
  before(async () => {
    pki = await softwarePki();
  });

  it('builds one-CertID requests our parser, pkijs and openssl read back, with the CA as issuer', () => {
    for (const hash of ['sha1', 'sha256'] as const) {
      const r = new RequestBuilder(pki.ca, hash, false).build('1001');
      const parsed = parseOcspRequest(r.der, { maxCertIds: 1 });
      const expected = issuerHashes(pki.ca, hash);
      assert.equal(parsed.certIds.length, 1);
      assert.deepEqual(
        { serial: parsed.certIds[0]!.serial, hash: parsed.certIds[0]!.hash, name: parsed.certIds[0]!.issuerNameHash, key: parsed.certIds[0]!.issuerKeyHash },
        { serial: '1001', hash, name: expected.nameHash, key: expected.keyHash },
      );
      assert.ok(parsed.certIds[0]!.certIdDer.equals(r.certIdDer));
      assert.equal(parsed.nonce, undefined);
      assert.equal(r.nonce, undefined);
      const p = pkijs.OCSPRequest.fromBER(r.der);
      assert.equal(p.tbsRequest.requestList.length, 1);
    }
  });

  it('puts a fresh 16-byte nonce in every request when asked', () => {
    const b = new RequestBuilder(pki.ca, 'sha1', true);
    const [r1, r2] = [b.build('1002'), b.build('1002')];
    assert.equal(r1.nonce!.length, 16);
    assert.ok(!r1.nonce!.equals(r2.nonce!));
    assert.ok(r1.certIdDer.equals(r2.certIdDer));
    const parsed = parseOcspRequest(r1.der, { maxCertIds: 1 });
    assert.ok(parsed.nonce!.equals(tlv(TAG.octetString, r1.nonce!)));
    const file = join(tempDir('stress-req'), 'req.der');
    writeFileSync(file, r1.der);
    const out = spawnSync('openssl', ['ocsp', '-reqin', file, '-req_text'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /Serial Number: 1002/);
    assert.match(out.stdout, /OCSP Nonce:\s*\n\s*0410([0-9A-F]{32})/);
    assert.equal(/0410([0-9A-F]{32})/.exec(out.stdout)![1], r1.nonce!.toString('hex').toUpperCase());
  });
});

describe('summarizeResponse', () => {
  it('reads the responseStatus and every certificate status', async () => {
    const pki = await softwarePki();
    const b = new RequestBuilder(pki.ca, 'sha1', false);
    const statuses: CertStatus[] = [{ kind: 'good' }, { kind: 'revoked', revokedAt: NOW, reason: 'keyCompromise' }, { kind: 'unknown' }];
    const tbs = encodeResponseData({
      responderIdDer: encodeResponderId({ byKey: responderKeyHash(pki.responder) }),
      producedAt: NOW,
      responses: statuses.map((status, i) => ({ certIdDer: b.build(String(1001 + i)).certIdDer, status, thisUpdate: NOW })),
    });
    const alg = encode(new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.ecdsaWithSha256 })] }));
    const der = encodeSuccessfulResponse({ tbs, signatureAlgorithmDer: alg, signature: await pki.responderSigner.sign(tbs), certsDer: encodeCerts([pki.responder.der]) });
    assert.deepEqual(summarizeResponse(der), { responseStatus: 'successful', certStatuses: ['good', 'revoked', 'unknown'] });
    assert.deepEqual(summarizeResponse(ERROR_RESPONSES.tryLater), { responseStatus: 'tryLater', certStatuses: [] });
    assert.deepEqual(summarizeResponse(ERROR_RESPONSES.unauthorized), { responseStatus: 'unauthorized', certStatuses: [] });
    assert.throws(() => summarizeResponse(Buffer.from('<html>not found</html>')));
    assert.throws(() => summarizeResponse(der.subarray(0, der.length - 3)));
  });
});

describe('Reservoir and percentile', () => {
  it('keeps at most its capacity, everything when fewer are offered, and samples the whole stream', () => {
    const small = new Reservoir<number>(10);
    for (let i = 0; i < 5; i++) small.offer(i);
    assert.deepEqual([...small.items()], [0, 1, 2, 3, 4]);
    const r = new Reservoir<number>(100);
    for (let i = 0; i < 10_000; i++) r.offer(i);
    assert.equal(r.items().length, 100);
    assert.equal(r.seen, 10_000);
    assert.equal(new Set(r.items()).size, 100);
    // A sample spread over the run: the chance that none of 100 falls in the last half is 2^-100.
    assert.ok(r.items().some((i) => i >= 5_000));
    assert.ok(r.items().some((i) => i < 5_000));
  });

  it('counts every request once: HTTP answers by status, the rest as errors; latency of answers only', () => {
    const stats = new BenchStats();
    const request = { serial: '1', der: Buffer.alloc(0), certIdDer: Buffer.alloc(0) };
    stats.record({ request, latencyMs: 2, httpStatus: 200, body: Buffer.alloc(1) }, { responseStatus: 'successful', certStatuses: ['good'] });
    stats.record({ request, latencyMs: 4, httpStatus: 200, body: Buffer.alloc(1) }, { responseStatus: 'tryLater', certStatuses: [] });
    stats.record({ request, latencyMs: 6, httpStatus: 200, body: Buffer.alloc(1) }, 'truncated element');
    stats.record({ request, latencyMs: 8, httpStatus: 404, body: Buffer.alloc(1) }, undefined);
    stats.record({ request, latencyMs: 10_000, error: 'timeout' }, undefined);
    const r = stats.report(2000, { sampled: 0, valid: 0, failures: [] });
    assert.deepEqual(
      { requests: r.requests, succeeded: r.succeeded, rate: r.requestsPerSecond, http: r.httpStatus, ocsp: r.responseStatus, cert: r.certStatus, errors: r.errors, latency: r.latencyMs },
      {
        requests: 5, succeeded: 1, rate: 2.5, http: { '200': 3, '404': 1 }, ocsp: { successful: 1, tryLater: 1, undecodable: 1 }, cert: { good: 1 },
        errors: { timeout: 1 }, latency: { p50: 4, p95: 8, p99: 8, max: 8 },
      },
    );
  });

  it('computes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.deepEqual([50, 95, 99, 100].map((p) => percentile(values, p)), [50, 95, 99, 100]);
    assert.equal(percentile([], 50), 0);
    assert.equal(percentile([7], 99), 7);
  });
});

describe('serialsFromFile', () => {
  it('reads hex serials (comments, colons, 0x) and PEM certificates of the CA, and names the bad line', async () => {
    const pki = await softwarePki();
    const dir = tempDir('stress-targets');
    const list = join(dir, 'serials.txt');
    writeFileSync(list, '# serials\n1001\n\n0x10:02  # second\nAB\n');
    assert.deepEqual(serialsFromFile(list, pki.ca), ['1001', '1002', 'ab']);
    const bad = join(dir, 'bad.txt');
    writeFileSync(bad, '1001\nxyz\n');
    assert.throws(() => serialsFromFile(bad, pki.ca), /bad\.txt:2: malformed serial "xyz"/);
    assert.deepEqual(serialsFromFile(pki.files.leaves[0]!, pki.ca), ['1001']);
    const other = await softwarePki();
    assert.throws(() => serialsFromFile(other.files.leaves[0]!, pki.ca), /not issued by the CA/);
    assert.throws(() => serialsFromFile(join(dir, 'missing'), pki.ca), /--certs: cannot read .*ENOENT/);
  });
});

describe('verifyResponse', () => {
  let pki: SoftwarePki;
  let request: BuiltRequest;
  let nonceRequest: BuiltRequest;
  const delegated = () => ({ signer: pki.responderSigner, signerCert: pki.responder, certs: [pki.responder] });
  before(async () => {
    pki = await softwarePki();
    request = new RequestBuilder(pki.ca, 'sha1', false).build('1001');
    nonceRequest = new RequestBuilder(pki.ca, 'sha256', true).build('1001');
  });

  it('accepts a delegated responder carrying its certificate, and the CA signing without certificates', async () => {
    assert.deepEqual(verifyResponse(request, await signedResponse({ ...delegated(), certIdDer: request.certIdDer }), pki.ca, NOW), { problems: [] });
    const byCa = await signedResponse({ signer: pki.caSigner, signerCert: pki.ca, certIdDer: request.certIdDer });
    assert.deepEqual(verifyResponse(request, byCa, pki.ca, NOW), { problems: [] });
  });

  it('finds a signature with one flipped byte', async () => {
    const der = await signedResponse({ ...delegated(), certIdDer: request.certIdDer });
    const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(der).responseBytes!.response.valueBlock.valueHexView);
    const sig = Buffer.from(basic.signature.valueBlock.valueHexView);
    const at = der.indexOf(sig) + Math.floor(sig.length / 2);
    const corrupted = Buffer.from(der);
    corrupted[at] ^= 0x01;
    assert.deepEqual(verifyResponse(request, corrupted, pki.ca, NOW).problems, ['signature does not verify with the signer certificate (CN=Unit Responder)']);
  });

  it('refuses signers the CA did not delegate: no id-kp-OCSPSigning, another CA, a responder left out', async () => {
    const key = softwareSigner('ec-p256');
    const plain = await issueCertificate({
      subjectCN: 'Not A Responder', publicKey: key.publicKey, serial: 9n, notBefore: new Date(NOW.getTime() - HOUR),
      notAfter: new Date(NOW.getTime() + HOUR), issuer: pki.ca, signer: pki.caSigner, kind: 'end-entity',
    });
    const noEku = await signedResponse({ signer: key, signerCert: plain, certs: [plain], certIdDer: request.certIdDer });
    assert.deepEqual(verifyResponse(request, noEku, pki.ca, NOW).problems, ['signer certificate (CN=Not A Responder) lacks id-kp-OCSPSigning']);

    const other = await softwarePki();
    const foreign = await signedResponse({ signer: other.responderSigner, signerCert: other.responder, certs: [other.responder], certIdDer: request.certIdDer });
    assert.deepEqual(verifyResponse(request, foreign, pki.ca, NOW).problems, ['signer certificate (CN=Unit Responder) was not issued by the CA']);

    const withoutCert = await signedResponse({ signer: pki.responderSigner, signerCert: pki.responder, certIdDer: request.certIdDer });
    assert.deepEqual(verifyResponse(request, withoutCert, pki.ca, NOW).problems, ['responderID names neither a certificate in the response nor the CA']);
  });

  it('checks the CertID asked, nextUpdate, and that a returned nonce is the one sent', async () => {
    const otherSerial = new RequestBuilder(pki.ca, 'sha1', false).build('1002');
    const wrongId = await signedResponse({ ...delegated(), certIdDer: otherSerial.certIdDer });
    assert.deepEqual(verifyResponse(request, wrongId, pki.ca, NOW).problems, ['CertID is not the one asked']);
    const stale = await signedResponse({ ...delegated(), certIdDer: request.certIdDer, nextUpdate: new Date(NOW.getTime() - HOUR) });
    assert.match(verifyResponse(request, stale, pki.ca, NOW).problems.join(), /nextUpdate .* has passed/);

    const echoed = await signedResponse({ ...delegated(), certIdDer: nonceRequest.certIdDer, nonceValue: nonceRequest.nonce! });
    assert.deepEqual(verifyResponse(nonceRequest, echoed, pki.ca, NOW), { problems: [], nonceEchoed: true });
    const wrongNonce = await signedResponse({ ...delegated(), certIdDer: nonceRequest.certIdDer, nonceValue: Buffer.alloc(16, 7) });
    assert.deepEqual(verifyResponse(nonceRequest, wrongNonce, pki.ca, NOW), { problems: ['nonce is not the one sent'], nonceEchoed: true });
    const without = await signedResponse({ ...delegated(), certIdDer: nonceRequest.certIdDer });
    assert.deepEqual(verifyResponse(nonceRequest, without, pki.ca, NOW), { problems: [], nonceEchoed: false });
  });

  it('reports unsigned and undecodable answers', () => {
    assert.match(verifyResponse(request, ERROR_RESPONSES.tryLater, pki.ca, NOW).problems[0]!, /not a successful basic OCSP response \(responseStatus 3\)/);
    assert.match(verifyResponse(request, Buffer.from('garbage'), pki.ca, NOW).problems[0]!, /not a successful basic OCSP response/);
  });
});
