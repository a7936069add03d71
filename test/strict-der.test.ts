// Strict DER on the way in (issue 16): every field of an OCSPRequest that is not DER is malformedRequest, over POST
// and GET, and what is accepted (and echoed) is the DER that pyca/cryptography and OpenSSL read.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { systemClock } from '../src/clock';
import { trustedProxyList } from '../src/http/client-address';
import { createOcspHandler } from '../src/http/ocsp-handler';
import { createHttpServer } from '../src/http/server';
import { createApp } from '../src/http/app';
import { MalformedRequestError } from '../src/ocsp/errors';
import { OcspRequest, parseOcspRequest } from '../src/ocsp/request';
import { ERROR_RESPONSES } from '../src/ocsp/status-responses';
import { TAG, tlv } from '../src/ocsp/tlv';
import type { Source } from '../src/source/source';
import { certIdDer, extension, extensions, hex, NONCE_OID, nonceExtension, rawRequest, RawRequestSpec } from './support/raw-requests';

const limits = { maxCertIds: 5 };
const NONCE = Buffer.alloc(16, 0x5a);
const OTHER_OID = hex('06 03 2a0304');
const ECDSA_SHA256 = hex('06 08 2a8648ce3d040302');
const cn = (value: Buffer) => tlv(TAG.sequence, tlv(0x31, tlv(TAG.sequence, hex('06 03 550403'), value)));
const signature = (alg: Buffer, bits: Buffer, ...certs: Buffer[]) =>
  tlv(TAG.ctxConstructed(0), tlv(TAG.sequence, alg, bits, ...(certs.length ? [tlv(TAG.ctxConstructed(0), tlv(TAG.sequence, ...certs))] : [])));
/** The CertID of a request inside its Request, with the given framing around its contents. */
const certIdFramed = (open: string, close: string) => {
  const id = certIdDer();
  const framed = Buffer.concat([hex(open), id.subarray(2), hex(close)]);
  return tlv(TAG.sequence, tlv(TAG.sequence, tlv(TAG.sequence, tlv(TAG.sequence, framed))));
};

/** [name, request, what the refusal must name] */
const REFUSED: [string, Buffer, RegExp][] = [
  // The findings of issue 16: parameters other than absent or NULL, and a serial with a leading zero octet.
  ['hashAlgorithm parameters an OCTET STRING', rawRequest({ hashParams: hex('04 00') }), /hashAlgorithm parameters/],
  ['hashAlgorithm parameters a SEQUENCE', rawRequest({ hashParams: hex('30 03 020101') }), /hashAlgorithm parameters/],
  ['hashAlgorithm parameters a NULL with contents', rawRequest({ hashParams: hex('05 01 00') }), /hashAlgorithm parameters/],
  ['hashAlgorithm with NULL twice', rawRequest({ hashParams: hex('0500 0500') }), /hashAlgorithm/],
  ['serial 02 03 00 10 01 (leading zero octet)', rawRequest({ serial: hex('02 03 001001') }), /serialNumber: .*leading 0x00/],
  ['serial 02 02 ff 80 (leading 0xff octet)', rawRequest({ serial: hex('02 02 ff80') }), /serialNumber: .*leading 0xff/],
  ['serial of no octets', rawRequest({ serial: hex('02 00') }), /serialNumber/],
  ['serial with a long-form length', rawRequest({ serial: hex('02 81 01 01') }), /non-minimal length/],
  ['serial in the constructed form', rawRequest({ serial: hex('22 03 020101') }), /CertID does not match its syntax/],
  ['an element after the serial', rawRequest({ serial: hex('020101 0500') }), /CertID does not match its syntax/],
  ['hash OID with a padded subidentifier', rawRequest({ hashOid: hex('06 06 2b0e0302 801a') }), /hashAlgorithm: .*OBJECT IDENTIFIER/],
  ['hash OID ending inside a subidentifier', rawRequest({ hashOid: hex('06 05 2b0e0302 9a') }), /hashAlgorithm: .*OBJECT IDENTIFIER/],
  ['hash OID of no octets', rawRequest({ hashOid: hex('06 00') }), /hashAlgorithm: .*OBJECT IDENTIFIER/],
  ['CertID with an indefinite length', certIdFramed('30 80', '00 00'), /indefinite length/],
  ['CertID with a long-form length', certIdFramed(`30 81 ${certIdDer()[1]!.toString(16)}`, ''), /non-minimal length/],
  ['a byte after the OCSPRequest', Buffer.concat([rawRequest(), hex('00')]), /trailing data/],
  // TBSRequest.version is DEFAULT v1: DER leaves it out (X.690 section 11.5).
  ['version v1 written out', rawRequest({ version: hex('a0 03 020100') }), /version: .*DEFAULT/],
  ['version v2', rawRequest({ version: hex('a0 03 020101') }), /version/],
  ['version as a padded INTEGER', rawRequest({ version: hex('a0 04 02020000') }), /version/],
  // Extension.critical is DEFAULT FALSE; a BOOLEAN is 0x00 or 0xFF (X.690 section 11.1).
  ['nonce with critical FALSE written out', rawRequest({ requestExtensions: extensions(2, nonceExtension(NONCE, hex('01 01 00'))) }), /critical: .*DEFAULT/],
  ['nonce with critical 0x01', rawRequest({ requestExtensions: extensions(2, nonceExtension(NONCE, hex('01 01 01'))) }), /critical: .*BOOLEAN/],
  ['critical of two octets', rawRequest({ requestExtensions: extensions(2, nonceExtension(NONCE, hex('01 02 ffff'))) }), /critical: .*BOOLEAN/],
  ['singleRequestExtension with critical FALSE written out', rawRequest({ singleExtensions: extensions(0, extension(OTHER_OID, hex('0500'), hex('01 01 00'))) }), /critical: .*DEFAULT/],
  ['extension OID with a padded subidentifier', rawRequest({ requestExtensions: extensions(2, extension(hex('06 04 2a800304'), hex('0500'))) }), /extnID: .*OBJECT IDENTIFIER/],
  ['nonce OCTET STRING with a long-form length', rawRequest({ requestExtensions: extensions(2, extension(NONCE_OID, Buffer.concat([hex('04 81 10'), NONCE]))) }), /nonce/],
  ['empty requestExtensions', rawRequest({ requestExtensions: hex('a2 02 3000') }), /requestExtensions.*empty/],
  ['empty singleRequestExtensions', rawRequest({ singleExtensions: hex('a0 02 3000') }), /singleRequestExtensions.*empty/],
  ['the nonce twice', rawRequest({ requestExtensions: extensions(2, nonceExtension(NONCE), nonceExtension(NONCE)) }), /twice/],
  // requestorName may be ignored (RFC 6960 section 4.1.2), but not its encoding.
  ['requestorName holding two GeneralNames', rawRequest({ requestorName: tlv(0xa1, tlv(0x82, Buffer.from('a.example')), tlv(0x82, Buffer.from('b'))) }), /requestorName/],
  ['requestorName holding no GeneralName', rawRequest({ requestorName: tlv(0xa1, tlv(TAG.octetString, Buffer.from('x'))) }), /requestorName/],
  ['requestorName a dNSName in the constructed form', rawRequest({ requestorName: tlv(0xa1, tlv(0xa2, tlv(0x16, Buffer.from('a')))) }), /requestorName/],
  ['requestorName with an indefinite length inside', rawRequest({ requestorName: tlv(0xa1, Buffer.concat([hex('a4 80'), cn(tlv(0x0c, Buffer.from('A'))), hex('0000')])) }), /indefinite length/],
  ['requestorName with a padded OID inside', rawRequest({ requestorName: tlv(0xa1, tlv(0xa4, tlv(TAG.sequence, tlv(0x31, tlv(TAG.sequence, hex('06 04 55 80 04 03'), tlv(0x0c, Buffer.from('A'))))))) }), /OBJECT IDENTIFIER/],
  ['requestorName with a constructed UTF8String inside', rawRequest({ requestorName: tlv(0xa1, tlv(0xa4, cn(tlv(0x2c, tlv(0x0c, Buffer.from('A')))))) }), /constructed form/],
  // optionalSignature may be ignored too (RFC 9919 section 8.4), not its encoding.
  ['optionalSignature with 8 unused bits', rawRequest({ optionalSignature: signature(tlv(TAG.sequence, ECDSA_SHA256), hex('03 02 08 00')) }), /BIT STRING/],
  ['optionalSignature with a padding bit set', rawRequest({ optionalSignature: signature(tlv(TAG.sequence, ECDSA_SHA256), hex('03 02 04 01')) }), /BIT STRING/],
  ['optionalSignature with a BOOLEAN 0x01 inside', rawRequest({ optionalSignature: signature(tlv(TAG.sequence, ECDSA_SHA256, hex('01 01 01')), hex('03 02 00 aa')) }), /BOOLEAN/],
  ['optionalSignature with a padded INTEGER inside a certificate', rawRequest({ optionalSignature: signature(tlv(TAG.sequence, ECDSA_SHA256), hex('03 02 00 aa'), tlv(TAG.sequence, hex('02 02 0001'))) }), /INTEGER/],
  ['optionalSignature holding nothing', rawRequest({ optionalSignature: hex('a0 00') }), /optionalSignature/],
  ['optionalSignature not a Signature', rawRequest({ optionalSignature: tlv(0xa0, tlv(TAG.octetString, Buffer.from('x'))) }), /optionalSignature/],
];

/** [name, spec, serial read]: DER, so accepted, and the CertID kept byte for byte for the echo. */
const ACCEPTED: [string, RawRequestSpec, string][] = [
  ['hashAlgorithm parameters NULL', {}, '1'],
  ['hashAlgorithm parameters absent', { hashParams: Buffer.alloc(0) }, '1'],
  ['serial 02 02 00 80 (the zero octet needed for the sign)', { serial: hex('02 02 0080') }, '80'],
  ['serial 02 01 00', { serial: hex('02 01 00') }, '0'],
  ['serial 02 01 ff (negative, DER all the same)', { serial: hex('02 01 ff') }, '-1'],
  ['a 21-octet serial', { serial: Buffer.concat([hex('02 15 00'), Buffer.alloc(20, 0xc3)]) }, 'c3'.repeat(20)],
  ['nonce with critical TRUE', { requestExtensions: extensions(2, nonceExtension(NONCE, hex('01 01 ff'))) }, '1'],
  ['an unknown non-critical singleRequestExtension', { singleExtensions: extensions(0, extension(OTHER_OID, hex('0500'))) }, '1'],
  ['requestorName a directoryName', { requestorName: tlv(0xa1, tlv(0xa4, cn(tlv(0x0c, Buffer.from('Client'))))) }, '1'],
  ['requestorName a dNSName', { requestorName: tlv(0xa1, tlv(0x82, Buffer.from('client.example'))) }, '1'],
  ['an optionalSignature with certs', { optionalSignature: signature(tlv(TAG.sequence, ECDSA_SHA256), hex('03 03 04 aa b0'), tlv(TAG.sequence, hex('02 02 0080 0101ff 0500'))) }, '1'],
];

describe('parseOcspRequest refuses every field that is not DER', () => {
  for (const [name, der, pattern] of REFUSED) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseOcspRequest(der, limits), (e: unknown) => {
        assert.ok(e instanceof MalformedRequestError, `expected MalformedRequestError, got ${e}`);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }

  for (const [name, spec, serial] of ACCEPTED) {
    it(`accepts ${name}, keeping the CertID as sent`, () => {
      const req = parseOcspRequest(rawRequest(spec), limits);
      assert.equal(req.certIds[0]!.serial, serial);
      assert.deepEqual(req.certIds[0]!.certIdDer, certIdDer(spec));
    });
  }

  it('walks a requestorName nested 20,000 deep without running out of stack, down to a bad BOOLEAN at the bottom', () => {
    let nested = hex('01 01 01');
    for (let i = 0; i < 20_000; i++) nested = tlv(TAG.sequence, nested);
    assert.throws(() => parseOcspRequest(rawRequest({ requestorName: tlv(0xa1, tlv(0xa4, nested)) }), limits), /requestorName: BOOLEAN/);
  });

  it('reads an unknown hash OID with absent parameters as no hash (the issuer filter answers it)', () => {
    const req = parseOcspRequest(rawRequest({ hashOid: hex('06 08 2a864886f70d0205'), hashParams: Buffer.alloc(0) }), limits);
    assert.equal(req.certIds[0]!.hash, undefined);
  });
});

/** Remembers what reached it: nothing that is not DER may. */
class RecordingSource implements Source<OcspRequest> {
  seen: OcspRequest[] = [];
  async response(req: OcspRequest) {
    this.seen.push(req);
    const t = new Date();
    return { der: Buffer.from('30030a0100', 'hex'), producedAt: t, thisUpdate: t, nextUpdate: t };
  }
}

describe('the HTTP edge answers non-DER requests malformedRequest, over POST and GET', () => {
  let server: Server;
  let base: string;
  const source = new RecordingSource();

  before(async () => {
    const logger = pino({ level: 'silent' });
    const ocsp = createOcspHandler({
      source, limits, bodyLimit: 4096, responseTimeoutMs: 2000, logger, clock: systemClock, trustedProxies: trustedProxyList([]),
    });
    server = createHttpServer(ocsp, createApp({ ready: async () => true, logger }));
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const ask = async (method: 'GET' | 'POST', der: Buffer) => {
    const r = method === 'POST'
      ? await fetch(base + '/', { method, body: der, headers: { 'content-type': 'application/ocsp-request' }, signal: AbortSignal.timeout(5000) })
      : await fetch(`${base}/${encodeURIComponent(der.toString('base64'))}`, { signal: AbortSignal.timeout(5000) });
    assert.equal(r.status, 200);
    return Buffer.from(await r.arrayBuffer());
  };

  for (const method of ['POST', 'GET'] as const) {
    it(`${method}: parameters other than absent or NULL and a leading-zero serial get malformedRequest and reach no source`, async () => {
      const before = source.seen.length;
      for (const spec of [{ hashParams: hex('04 00') }, { hashParams: hex('30 03 020101') }, { serial: hex('02 03 001001') }]) {
        assert.deepEqual(await ask(method, rawRequest(spec)), ERROR_RESPONSES.malformedRequest, JSON.stringify(spec));
      }
      assert.equal(source.seen.length, before);
      for (const spec of [{}, { hashParams: Buffer.alloc(0) }, { serial: hex('02 02 0080') }]) {
        assert.notDeepEqual(await ask(method, rawRequest(spec)), ERROR_RESPONSES.malformedRequest);
      }
      assert.deepEqual(source.seen.slice(before).map((r) => r.certIds[0]!.serial), ['1', '1', '80']);
    });
  }
});
