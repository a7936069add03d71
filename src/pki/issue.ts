// Issues X.509 certificates signed through a Signer (so a CA key can stay inside the token); for the demo and tests.
import { createHash, KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Signer } from '../signing/signer';
import { toArrayBuffer } from '../ocsp/der';
import { OID } from '../ocsp/oids';
import { LoadedCertificate, parseCertificate, subjectPublicKeyBits } from './certificate';

export interface IssueRequest {
  subjectCN: string;
  organization?: string;
  publicKey: KeyObject;
  serial: bigint;
  notBefore: Date;
  notAfter: Date;
  /** Issuer certificate; omitted for a self-signed CA. */
  issuer?: LoadedCertificate;
  signer: Signer;
  kind: 'ca' | 'ocsp-responder' | 'end-entity';
}

export async function issueCertificate(req: IssueRequest): Promise<LoadedCertificate> {
  const spki = pkijs.PublicKeyInfo.fromBER(req.publicKey.export({ type: 'spki', format: 'der' }));
  const subject = name(req.subjectCN, req.organization);
  const skid = createHash('sha1').update(Buffer.from(spki.subjectPublicKey.valueBlock.valueHexView)).digest();
  const akid = req.issuer ? createHash('sha1').update(subjectPublicKeyBits(req.issuer)).digest() : skid;
  const sigAlg = new pkijs.AlgorithmIdentifier({
    algorithmId: req.signer.algorithm.oid,
    ...(req.signer.algorithm.keyType === 'rsa' ? { algorithmParams: new asn1js.Null() } : {}),
  });
  const cert = new pkijs.Certificate({
    version: 2,
    serialNumber: new asn1js.Integer({ valueHex: toArrayBuffer(integerBytes(req.serial)) }),
    issuer: req.issuer ? req.issuer.cert.subject : subject,
    subject,
    notBefore: time(req.notBefore),
    notAfter: time(req.notAfter),
    subjectPublicKeyInfo: spki,
    signature: sigAlg,
    signatureAlgorithm: sigAlg,
    extensions: extensions(req.kind, skid, akid),
  });
  const tbs = Buffer.from(cert.encodeTBS().toBER());
  cert.tbsView = new Uint8Array(tbs);
  cert.signatureValue = new asn1js.BitString({ valueHex: toArrayBuffer(await req.signer.sign(tbs)) });
  return parseCertificate(Buffer.from(cert.toSchema().toBER()));
}

function extensions(kind: IssueRequest['kind'], skid: Buffer, akid: Buffer): pkijs.Extension[] {
  const ext = (extnID: string, critical: boolean, value: asn1js.BaseBlock) =>
    new pkijs.Extension({ extnID, critical, extnValue: value.toBER() });
  // KeyUsage bits, first octet: digitalSignature 0x80, keyCertSign 0x04, cRLSign 0x02.
  const keyUsage = kind === 'ca' ? 0x06 : 0x80;
  const list = [
    ext('2.5.29.19', true, new pkijs.BasicConstraints({ cA: kind === 'ca' }).toSchema()),
    ext('2.5.29.15', true, new asn1js.BitString({ valueHex: new Uint8Array([keyUsage]).buffer, unusedBits: kind === 'ca' ? 1 : 7 })),
    ext('2.5.29.14', false, new asn1js.OctetString({ valueHex: toArrayBuffer(skid) })),
    ext('2.5.29.35', false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: toArrayBuffer(akid) }) }).toSchema()),
  ];
  if (kind === 'ocsp-responder') {
    list.push(ext('2.5.29.37', false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.kpOcspSigning] }).toSchema()));
    // Baseline Requirements 4.9.9: delegated responders carry id-pkix-ocsp-nocheck (value NULL).
    list.push(ext(OID.ocspNoCheck, false, new asn1js.Null()));
  }
  return list;
}

// One attribute per RDN (pkijs would put them all in one multi-valued RDN).
function name(cn: string, o?: string): pkijs.RelativeDistinguishedNames {
  const rdn = (type: string, value: string) =>
    new asn1js.Set({ value: [new pkijs.AttributeTypeAndValue({ type, value: new asn1js.Utf8String({ value }) }).toSchema()] });
  const rdns = [...(o ? [rdn('2.5.4.10', o)] : []), rdn('2.5.4.3', cn)];
  return new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(new asn1js.Sequence({ value: rdns }).toBER()).result });
}

// RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
function time(d: Date): pkijs.Time {
  return new pkijs.Time({ type: d.getUTCFullYear() < 2050 ? 0 : 1, value: new Date(Math.floor(d.getTime() / 1000) * 1000) });
}

function integerBytes(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  const b = Buffer.from(hex, 'hex');
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}
