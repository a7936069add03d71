// A PKCS#10 request (RFC 2986) for a delegated OCSP responder certificate, signed through a Signer (inside the token).
import { KeyObject, verify } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Signer } from '../signing/signer';
import { toArrayBuffer } from '../ocsp/der';
import { OID } from '../ocsp/oids';
import { SubjectAttribute, subjectName } from './subject';

/** PKCS#9 extensionRequest: the extensions the CA is asked to copy (`copy_extensions` in `openssl ca`). */
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

export interface CsrRequest {
  subject: SubjectAttribute[];
  publicKey: KeyObject;
  signer: Signer;
}

/** DER of the request; the CA decides what it issues, the request says what a responder certificate needs. */
export async function ocspResponderCsr(req: CsrRequest): Promise<Buffer> {
  const csr = new pkijs.CertificationRequest({
    version: 0,
    subject: subjectName(req.subject),
    subjectPublicKeyInfo: pkijs.PublicKeyInfo.fromBER(req.publicKey.export({ type: 'spki', format: 'der' })),
    attributes: [new pkijs.Attribute({ type: EXTENSION_REQUEST, values: [new pkijs.Extensions({ extensions: responderExtensions() }).toSchema()] })],
  });
  // pkijs keeps encodeTBS protected here (public on Certificate); its sign() wants a WebCrypto key, not a token.
  const tbs = Buffer.from((csr as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS().toBER());
  csr.tbsView = new Uint8Array(tbs);
  csr.signatureAlgorithm = new pkijs.AlgorithmIdentifier({
    algorithmId: req.signer.algorithm.oid,
    // RFC 4055 section 5: sha256WithRSAEncryption carries NULL parameters; ECDSA none (RFC 5758 section 3.2).
    ...(req.signer.algorithm.keyType === 'rsa' ? { algorithmParams: new asn1js.Null() } : {}),
  });
  const signature = await req.signer.sign(tbs);
  // A token key whose public half was read from another object would give a request no CA accepts: say so here.
  if (!verify(req.signer.algorithm.hash, tbs, req.publicKey, signature)) {
    throw new Error('the signature made in the token does not verify with the public key read from it');
  }
  csr.signatureValue = new asn1js.BitString({ valueHex: toArrayBuffer(signature) });
  return Buffer.from(csr.toSchema(true).toBER());
}

export function csrToPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

// RFC 6960 section 4.2.2.2: id-kp-OCSPSigning; section 4.2.2.2.1: id-pkix-ocsp-nocheck (NULL), which the CA/Browser
// Forum Baseline Requirements (4.9.9) require of delegated responders; keyUsage digitalSignature for the signatures.
function responderExtensions(): pkijs.Extension[] {
  const ext = (extnID: string, critical: boolean, value: asn1js.BaseBlock) => new pkijs.Extension({ extnID, critical, extnValue: value.toBER() });
  return [
    ext('2.5.29.15', true, new asn1js.BitString({ valueHex: new Uint8Array([0x80]).buffer, unusedBits: 7 })),
    ext('2.5.29.37', false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.kpOcspSigning] }).toSchema()),
    ext(OID.ocspNoCheck, false, new asn1js.Null()),
  ];
}
