// Verifies one sampled response in full: decoded by pkijs, signature checked with node:crypto, CertID, times, nonce.
import { verify } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { decodeBasicResponse } from '../ocsp/basic-response';
import { toBuffer } from '../ocsp/der';
import { OID } from '../ocsp/oids';
import { LoadedCertificate, parseCertificate, responderKeyHash } from '../pki/certificate';
import { issuedBy } from '../pki/chain';
import type { BuiltRequest } from './request-builder';

export interface Verdict {
  /** What is wrong; empty when the response is valid. */
  problems: string[];
  /** With a nonce sent: whether it came back. RFC 9654 lets a responder leave it out (pre-produced answers). */
  nonceEchoed?: boolean;
}

// Signature algorithms an OCSP responder may use, with the digest node:crypto verifies them under.
const DIGEST_BY_SIGNATURE = new Map<string, string>([
  [OID.ecdsaWithSha256, 'sha256'],
  [OID.ecdsaWithSha384, 'sha384'],
  [OID.ecdsaWithSha512, 'sha512'],
  [OID.sha256WithRsa, 'sha256'],
  [OID.sha384WithRsa, 'sha384'],
  [OID.sha512WithRsa, 'sha512'],
  ['1.2.840.113549.1.1.5', 'sha1'], // sha1WithRSAEncryption: old responders still use it
]);

// Clocks of client and responder differ a little; RFC 9919 section 5 asks clients to allow for it.
const CLOCK_SKEW_MS = 5 * 60_000;

export function verifyResponse(request: BuiltRequest, body: Buffer, ca: LoadedCertificate, now: Date): Verdict {
  let basic: pkijs.BasicOCSPResponse;
  try {
    basic = decodeBasicResponse(body);
  } catch (e) {
    return { problems: [`not a successful basic OCSP response (${(e as Error).message})`] };
  }
  const data = basic.tbsResponseData;
  const problems: string[] = [];
  const signer = findSigner(basic, ca);
  if (typeof signer === 'string') problems.push(signer);
  else {
    problems.push(...signerProblems(signer, ca, now));
    problems.push(...signatureProblems(basic, signer));
  }
  if (data.responses.length !== 1) problems.push(`${data.responses.length} SingleResponses for one CertID asked`);
  const single = data.responses[0];
  if (single) {
    if (!single.certID.isEqual(pkijs.CertID.fromBER(request.certIdDer))) problems.push('CertID is not the one asked');
    problems.push(...timeProblems(data.producedAt, single.thisUpdate, single.nextUpdate, now));
  }
  if (!request.nonce) return { problems };
  const echoed = data.responseExtensions?.find((e) => e.extnID === OID.ocspNonce);
  if (!echoed) return { problems, nonceEchoed: false };
  const expected = new asn1js.OctetString({ valueHex: request.nonce }).toBER();
  if (!toBuffer(echoed.extnValue.valueBlock.valueHexView).equals(Buffer.from(expected))) problems.push('nonce is not the one sent');
  return { problems, nonceEchoed: true };
}

/**
 * RFC 6960 section 4.2.2.2: the signer is the CA itself or a delegated responder the CA issued. The one the
 * responderID names among the certificates carried, else the CA certificate (a responder may leave its own out).
 */
function findSigner(basic: pkijs.BasicOCSPResponse, ca: LoadedCertificate): LoadedCertificate | string {
  const carried: LoadedCertificate[] = [];
  for (const c of basic.certs ?? []) {
    try {
      carried.push(parseCertificate(Buffer.from(c.toSchema().toBER())));
    } catch (e) {
      return `carries a certificate that does not parse (${(e as Error).message})`;
    }
  }
  const id = basic.tbsResponseData.responderID;
  const named = [...carried, ca].find((c) => namesSigner(id, c));
  return named ?? 'responderID names neither a certificate in the response nor the CA';
}

// RFC 6960 section 4.2.1: byKey is the SHA-1 of the signer's public key bits, byName its subject.
function namesSigner(responderID: unknown, c: LoadedCertificate): boolean {
  if (responderID instanceof asn1js.OctetString) return toBuffer(responderID.valueBlock.valueHexView).equals(responderKeyHash(c));
  if (responderID instanceof pkijs.RelativeDistinguishedNames) return responderID.isEqual(c.cert.subject);
  return false;
}

function signerProblems(signer: LoadedCertificate, ca: LoadedCertificate, now: Date): string[] {
  const problems: string[] = [];
  const name = signer.x509.subject.replace(/\n/g, ', ');
  if (!signer.der.equals(ca.der)) {
    if (!issuedBy(signer, ca)) problems.push(`signer certificate (${name}) was not issued by the CA`);
    // node:crypto's keyUsage is the extended key usage list.
    if (!(signer.x509.keyUsage ?? []).includes(OID.kpOcspSigning)) problems.push(`signer certificate (${name}) lacks id-kp-OCSPSigning`);
  }
  if (now < new Date(signer.x509.validFrom) || now > new Date(signer.x509.validTo)) {
    problems.push(`signer certificate (${name}) is not valid now (${signer.x509.validFrom} to ${signer.x509.validTo})`);
  }
  return problems;
}

function signatureProblems(basic: pkijs.BasicOCSPResponse, signer: LoadedCertificate): string[] {
  const algorithm = basic.signatureAlgorithm.algorithmId;
  const digest = DIGEST_BY_SIGNATURE.get(algorithm);
  if (!digest) return [`signature algorithm ${algorithm} is not supported by this tool`];
  const tbs = toBuffer(basic.tbsResponseData.tbsView);
  const signature = toBuffer(basic.signature.valueBlock.valueHexView);
  let ok: boolean;
  try {
    ok = verify(digest, tbs, signer.x509.publicKey, signature);
  } catch {
    ok = false; // a signature that is not even well-formed for the key type
  }
  return ok ? [] : [`signature does not verify with the signer certificate (${signer.x509.subject.replace(/\n/g, ', ')})`];
}

function timeProblems(producedAt: Date, thisUpdate: Date, nextUpdate: Date | undefined, now: Date): string[] {
  const problems: string[] = [];
  const future = now.getTime() + CLOCK_SKEW_MS;
  if (producedAt.getTime() > future) problems.push(`producedAt ${producedAt.toISOString()} is in the future`);
  if (thisUpdate.getTime() > future) problems.push(`thisUpdate ${thisUpdate.toISOString()} is in the future`);
  if (nextUpdate && nextUpdate.getTime() < now.getTime() - CLOCK_SKEW_MS) problems.push(`nextUpdate ${nextUpdate.toISOString()} has passed`);
  return problems;
}
