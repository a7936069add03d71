// Checks one stored response: signed by the CA binding's signer, for this certificate, saying what the store says.
import { verify } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { splitBasicResponse, SplitBasicResponse } from '../ocsp/basic-response';
import { toBuffer } from '../ocsp/der';
import { HASH_BY_OID, OID } from '../ocsp/oids';
import { REASONS, ReasonName } from '../ocsp/reasons';
import { serialFromIntegerBytes } from '../ocsp/serial';
import { issuerHashes, LoadedCertificate, responderKeyHash } from '../pki/certificate';
import type { StoredResponse } from '../store/response-store';
import type { CertificateRecord } from '../store/status-store';
import { CabfCheck, cabfProblems } from './cabf-check';
import { describeStatus, differingFields, isoSeconds, StatusFacts } from './status-compare';

/** The CA binding responses are checked against (cas[].certificate and the signer's certificate). */
export interface Binding {
  caCert: LoadedCertificate;
  /** The delegated responder's certificate, or the CA certificate when the CA key signs. */
  signerCert: LoadedCertificate;
  /**
   * When the CA certificate was revoked for a compromise reason (by a CA we also serve): responses may then say
   * revoked with cACompromise at that time for every certificate (RFC 6960 section 2.7, the responder's rule).
   */
  issuerRevokedAt?: Date;
}

const REASON_BY_CODE = new Map<number, ReasonName>(Object.entries(REASONS).map(([name, code]) => [code, name as ReasonName]));

/**
 * What is wrong with `stored` (empty when nothing); `cert` is the store's record for its serial, if any. With `cabf`
 * (the CA under compliance: cabf), what the Baseline Requirements forbid too.
 */
export async function responseProblems(stored: StoredResponse, cert: CertificateRecord | undefined, binding: Binding, cabf?: CabfCheck): Promise<string[]> {
  let basic: SplitBasicResponse;
  try {
    basic = splitBasicResponse(stored.der);
  } catch (e) {
    return [`not a successful basic OCSP response (${(e as Error).message})`];
  }
  const problems: string[] = [];
  const data = basic.data;
  if (!verifies(basic, binding.signerCert)) problems.push(`signature does not verify with the signer certificate (${binding.signerCert.x509.subject.replace(/\n/g, ', ')})`);
  if (!namesSigner(data.responderID, binding.signerCert)) problems.push('responderID does not name the signer');
  // Clients verify with the signer certificate the response carries (includeSignerCert): when it carries any, the
  // signer's must be there byte for byte (a re-encoding of what was parsed could hide a change).
  if (basic.certs > 0 && !stored.der.includes(binding.signerCert.der)) {
    problems.push('does not carry the signer certificate unchanged');
  }
  if (data.responses.length !== 1) return [...problems, `${data.responses.length} SingleResponses instead of one`];
  const single = data.responses[0]!;
  problems.push(...certIdProblems(single.certID, stored, binding.caCert));
  problems.push(...statusProblems(single.certStatus, cert, binding.issuerRevokedAt));
  if (cabf) problems.push(...cabfProblems(single, stored, cert, cabf));
  const times: [string, Date | undefined, Date][] = [
    ['producedAt', data.producedAt, stored.producedAt],
    ['thisUpdate', single.thisUpdate, stored.thisUpdate],
    ['nextUpdate', single.nextUpdate, stored.nextUpdate],
  ];
  for (const [name, inResponse, inRow] of times) {
    // The row's copy decides when the response stops being served; it must be the response's own.
    if (inResponse?.getTime() !== inRow.getTime()) {
      problems.push(`${name} ${inResponse ? isoSeconds(inResponse) : 'absent'} but the row says ${isoSeconds(inRow)}`);
    }
  }
  return problems;
}

// The signature algorithms responders use; verified with node:crypto and the certificate's key object (no
// per-response key import: a check reads every stored response).
const VERIFY_HASH = new Map<string, string>([[OID.ecdsaWithSha256, 'sha256'], [OID.ecdsaWithSha384, 'sha384'], [OID.ecdsaWithSha512, 'sha512'], [OID.sha256WithRsa, 'sha256']]);

function verifies(basic: SplitBasicResponse, signer: LoadedCertificate): boolean {
  const hash = VERIFY_HASH.get(basic.signatureAlgorithm);
  if (!hash) return false;
  const key = signer.x509.publicKey;
  try {
    return verify(hash, basic.tbsDer, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key, basic.signature);
  } catch {
    return false;
  }
}

// RFC 6960 section 4.2.1: byKey is the SHA-1 of the signer's public key bits, byName its subject.
function namesSigner(responderID: unknown, signer: LoadedCertificate): boolean {
  if (responderID instanceof asn1js.OctetString) return toBuffer(responderID.valueBlock.valueHexView).equals(responderKeyHash(signer));
  if (responderID instanceof pkijs.RelativeDistinguishedNames) return responderID.isEqual(signer.cert.subject);
  return false;
}

function certIdProblems(certId: pkijs.CertID, stored: StoredResponse, ca: LoadedCertificate): string[] {
  const problems: string[] = [];
  const hash = HASH_BY_OID.get(certId.hashAlgorithm.algorithmId);
  const serial = serialFromIntegerBytes(toBuffer(certId.serialNumber.valueBlock.valueHexView));
  if (serial !== stored.serial) problems.push(`CertID is for serial ${serial}`);
  if (hash !== stored.hash) problems.push(`CertID hash is ${hash ?? certId.hashAlgorithm.algorithmId}, the row says ${stored.hash}`);
  if (hash) {
    const expected = issuerHashes(ca, hash);
    const nameHash = toBuffer(certId.issuerNameHash.valueBlock.valueHexView);
    const keyHash = toBuffer(certId.issuerKeyHash.valueBlock.valueHexView);
    if (!nameHash.equals(expected.nameHash) || !keyHash.equals(expected.keyHash)) problems.push('CertID names another issuer');
  }
  // Requests are matched against the row's CertID: it must be the response's own (same fields; encodings may vary).
  let rowCertId: pkijs.CertID | undefined;
  try {
    rowCertId = pkijs.CertID.fromBER(stored.certIdDer);
  } catch {
    rowCertId = undefined;
  }
  if (!rowCertId?.isEqual(certId)) problems.push("the row's CertID is not the response's");
  return problems;
}

function statusProblems(certStatus: asn1js.BaseBlock, cert: CertificateRecord | undefined, issuerRevokedAt: Date | undefined): string[] {
  const said = readStatus(certStatus);
  const saidText = said === 'unknown' ? 'unknown' : said ? describeStatus(said) : 'an unreadable status';
  if (!cert) return [`says ${saidText}, but the store has no certificate with this serial`];
  if (said === undefined || said === 'unknown') return [`says ${saidText}, the store says ${describeStatus(cert)}`];
  // The response is made from the store's record, so the reason compares exactly (absent is not unspecified);
  // a record revoked without a time is answered with the epoch.
  const own: StatusFacts = cert.status === 'revoked' ? { ...cert, revokedAt: cert.revokedAt ?? new Date(0) } : cert;
  const expected: StatusFacts[] = [own];
  if (issuerRevokedAt) expected.push({ status: 'revoked', revokedAt: issuerRevokedAt, reason: 'cACompromise' });
  if (expected.some((e) => differingFields(said, e).length === 0 && said.reason === e.reason)) return [];
  return [`says ${saidText}, the store says ${describeStatus(cert)}${issuerRevokedAt ? ` (and the CA certificate is revoked since ${isoSeconds(issuerRevokedAt)})` : ''}`];
}

// CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
function readStatus(block: asn1js.BaseBlock): StatusFacts | 'unknown' | undefined {
  if (block.idBlock.tagClass !== 3) return undefined;
  if (block.idBlock.tagNumber === 0) return { status: 'good' };
  if (block.idBlock.tagNumber === 2) return 'unknown';
  if (block.idBlock.tagNumber !== 1 || !(block instanceof asn1js.Constructed)) return undefined;
  const [time, reasonBlock] = block.valueBlock.value;
  if (!(time instanceof asn1js.GeneralizedTime)) return undefined;
  const facts: StatusFacts = { status: 'revoked', revokedAt: time.toDate() };
  if (reasonBlock instanceof asn1js.Constructed) {
    const code = reasonBlock.valueBlock.value[0];
    const reason = code instanceof asn1js.Enumerated ? REASON_BY_CODE.get(code.valueBlock.valueDec) : undefined;
    if (!reason) return undefined;
    facts.reason = reason;
  }
  return facts;
}
