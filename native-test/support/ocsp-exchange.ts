// One OCSP exchange with a responder on 127.0.0.1 for serials of one CA: the request built with pkijs (one or more
// SHA-1 CertIDs, a nonce or not), sent by GET or POST, the answer decoded with pkijs (status per serial asked, nonce).
import { KeyObject, randomBytes, verify } from 'node:crypto';
import { Agent, request } from 'node:http';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OID } from '../../src/ocsp/oids';
import { serialFromIntegerBytes } from '../../src/ocsp/serial';
import { issuerHashes, LoadedCertificate } from '../../src/pki/certificate';

export type CertStatus = 'good' | 'revoked' | 'unknown';

export interface Question {
  url: string;
  serials: string[];
  method: 'GET' | 'POST';
  nonce: boolean;
}

export interface Answer {
  /** Date.now() when the request was handed to the socket: the answer reflects the store at or after it. */
  sentAt: number;
  /** OCSPResponseStatus (0 successful, 3 tryLater, ...); undefined when no OCSP response came back. */
  ocspStatus?: number;
  /** Per serial asked, what the response says (successful answers only). */
  statuses: Map<string, CertStatus>;
  /** What is wrong with a successful answer: a serial asked not answered, a nonce not echoed, an undecodable body. */
  problem?: string;
  transportError?: string;
  signed?: { tbs: Buffer; signature: Buffer };
}

// Unsigned error answers (RFC 6960 section 4.2.1: no responseBytes) are these five bytes.
const ERROR_PREFIX = Buffer.from([0x30, 0x03, 0x0a, 0x01]);
const STATUS_BY_TAG: CertStatus[] = ['good', 'revoked', 'unknown'];

export class OcspExchange {
  private readonly agent: Agent;
  private readonly nameHash: Buffer;
  private readonly keyHash: Buffer;

  constructor(issuer: LoadedCertificate, maxSockets: number) {
    ({ nameHash: this.nameHash, keyHash: this.keyHash } = issuerHashes(issuer, 'sha1'));
    // Idle sockets are dropped before the server's keep-alive timeout (Node's 5 s), so none is reused as it closes.
    this.agent = new Agent({ keepAlive: true, maxSockets, timeout: 4_000 });
  }

  async ask(q: Question): Promise<Answer> {
    const nonce = q.nonce ? randomBytes(16) : undefined;
    const der = this.requestDer(q.serials, nonce);
    const answer: Answer = { sentAt: 0, statuses: new Map() };
    let body: Buffer;
    try {
      body = await this.send(q, der, answer);
    } catch (e) {
      answer.transportError = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      return answer;
    }
    try {
      decode(body, q.serials, nonce, answer);
    } catch (e) {
      answer.problem = `undecodable answer: ${(e as Error).message}`;
    }
    return answer;
  }

  close(): void {
    this.agent.destroy();
  }

  private requestDer(serials: string[], nonce: Buffer | undefined): Buffer {
    const hashAlgorithm = new pkijs.AlgorithmIdentifier({ algorithmId: OID.sha1, algorithmParams: new asn1js.Null() });
    const req = new pkijs.OCSPRequest();
    req.tbsRequest.requestList = serials.map((s) => {
      const hex = s.length % 2 ? `0${s}` : s;
      const bytes = Buffer.from(hex, 'hex');
      const serialNumber = new asn1js.Integer({ valueHex: bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes });
      const reqCert = new pkijs.CertID({
        hashAlgorithm,
        issuerNameHash: new asn1js.OctetString({ valueHex: this.nameHash }),
        issuerKeyHash: new asn1js.OctetString({ valueHex: this.keyHash }),
        serialNumber,
      });
      return new pkijs.Request({ reqCert });
    });
    if (nonce) {
      const extnValue = new asn1js.OctetString({ valueHex: nonce }).toBER();
      req.tbsRequest.requestExtensions = [new pkijs.Extension({ extnID: OID.ocspNonce, critical: false, extnValue })];
    }
    return Buffer.from(req.toSchema(true).toBER());
  }

  private send(q: Question, der: Buffer, answer: Answer): Promise<Buffer> {
    // RFC 6960 Appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}.
    const target = q.method === 'GET' ? `${q.url}/${encodeURIComponent(der.toString('base64'))}` : q.url;
    const headers = q.method === 'POST' ? { 'content-type': 'application/ocsp-request', 'content-length': der.length } : {};
    return new Promise((resolve, reject) => {
      const req = request(target, { method: q.method, agent: this.agent, timeout: 10_000, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`HTTP ${res.statusCode}`))));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      answer.sentAt = Date.now();
      req.end(q.method === 'POST' ? der : undefined);
    });
  }
}

function decode(body: Buffer, serials: string[], nonce: Buffer | undefined, answer: Answer): void {
  if (body.length === 5 && body.subarray(0, 4).equals(ERROR_PREFIX)) {
    answer.ocspStatus = body[4]!;
    return;
  }
  const ocsp = pkijs.OCSPResponse.fromBER(body);
  answer.ocspStatus = ocsp.responseStatus.valueBlock.valueDec;
  if (answer.ocspStatus !== 0) return;
  const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
  for (const single of basic.tbsResponseData.responses) {
    const serial = serialFromIntegerBytes(new Uint8Array(single.certID.serialNumber.valueBlock.valueHexView));
    const status = STATUS_BY_TAG[single.certStatus.idBlock.tagNumber];
    if (single.certStatus.idBlock.tagClass !== 3 || !status) answer.problem = `serial ${serial}: unreadable certStatus`;
    else answer.statuses.set(serial, status);
  }
  const missing = serials.filter((s) => !answer.statuses.has(s));
  if (missing.length > 0) answer.problem = `no SingleResponse for ${missing.join(', ')}`;
  if (nonce) {
    // Pre-produced answers leave the nonce out (RFC 9654 allows it); one that is there must be ours.
    const ext = basic.tbsResponseData.responseExtensions?.find((e) => e.extnID === OID.ocspNonce);
    const echoed = ext && Buffer.from(ext.extnValue.valueBlock.valueHexView).subarray(2);
    if (serials.length > 1 && !echoed) answer.problem = 'a live answer without the nonce';
    if (echoed && !echoed.equals(nonce)) answer.problem = 'another nonce echoed';
  }
  answer.signed = { tbs: Buffer.from(basic.tbsResponseData.tbsView), signature: Buffer.from(basic.signature.valueBlock.valueHexView) };
}

/** ECDSA/RSA with SHA-256 over the tbsResponseData, with the responder certificate's key. */
export function signatureVerifies(signed: { tbs: Buffer; signature: Buffer }, responderKey: KeyObject): boolean {
  return verify('sha256', signed.tbs, responderKey, signed.signature);
}
