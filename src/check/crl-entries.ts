// Reads a full CRL (DER or PEM) issued by a CA, verifies its signature and lists its entries (RFC 5280 section 5).
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { toBuffer } from '../ocsp/der';
import { REASONS, ReasonName } from '../ocsp/reasons';
import { serialFromIntegerBytes } from '../ocsp/serial';
import type { LoadedCertificate } from '../pki/certificate';

export class CrlError extends Error {
  override name = 'CrlError';
}

export interface CrlEntry {
  /** Canonical lowercase hex (see ocsp/serial.ts). */
  serial: string;
  revokedAt: Date;
  /** Absent when the entry carries no reasonCode extension. */
  reason?: ReasonName;
}

export interface CrlContent {
  thisUpdate: Date;
  /** The CRL carries X.509's expiredCertsOnCRL extension: entries of expired certificates stay on it. */
  keepsExpired: boolean;
  entries: CrlEntry[];
}

const OID_REASON_CODE = '2.5.29.21';
const OID_DELTA_CRL_INDICATOR = '2.5.29.27';
const OID_EXPIRED_CERTS_ON_CRL = '2.5.29.60';
const PEM_CRL = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/;
const REASON_BY_CODE = new Map<number, ReasonName>(Object.entries(REASONS).map(([name, code]) => [code, name as ReasonName]));

/** True when the bytes look like a CRL rather than text such as an index.txt: PEM armour, or a DER SEQUENCE. */
export function looksLikeCrl(data: Buffer): boolean {
  return data[0] === 0x30 || data.toString('latin1').includes('-----BEGIN X509 CRL-----');
}

/**
 * Parses `data` (named `file` in errors) and returns its entries once its signature verifies with the CA
 * certificate's key and its issuer is that certificate's subject. Delta CRLs are refused: they list changes only.
 */
export async function readCrlEntries(data: Buffer, file: string, ca: LoadedCertificate): Promise<CrlContent> {
  const crl = parse(data, file);
  if (!crl.issuer.isEqual(ca.cert.subject)) throw new CrlError(`${file}: the CRL's issuer is not the subject of the CA certificate`);
  let verified = false;
  try {
    verified = await crl.verify({ issuerCertificate: ca.cert });
  } catch (e) {
    throw new CrlError(`${file}: cannot verify the CRL's signature: ${(e as Error).message}`);
  }
  if (!verified) throw new CrlError(`${file}: the CRL's signature does not verify with the CA certificate's key`);
  const extensions = crl.crlExtensions?.extensions ?? [];
  if (extensions.some((e) => e.extnID === OID_DELTA_CRL_INDICATOR)) {
    throw new CrlError(`${file}: a delta CRL lists only changes; give a full CRL`);
  }
  const entries = (crl.revokedCertificates ?? []).map((rc, i) => entry(rc, `${file}: entry ${i + 1}`));
  return { thisUpdate: crl.thisUpdate.value, keepsExpired: extensions.some((e) => e.extnID === OID_EXPIRED_CERTS_ON_CRL), entries };
}

function parse(data: Buffer, file: string): pkijs.CertificateRevocationList {
  let der = data;
  const pem = PEM_CRL.exec(data.toString('latin1'));
  if (pem) der = Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
  try {
    const asn1 = asn1js.fromBER(der);
    if (asn1.offset === -1 || asn1.offset !== der.length) throw new Error('not one complete DER element');
    return new pkijs.CertificateRevocationList({ schema: asn1.result });
  } catch (e) {
    throw new CrlError(`${file}: not a valid CRL (${(e as Error).message})`);
  }
}

function entry(rc: pkijs.RevokedCertificate, where: string): CrlEntry {
  const out: CrlEntry = { serial: serialFromIntegerBytes(toBuffer(rc.userCertificate.valueBlock.valueHexView)), revokedAt: rc.revocationDate.value };
  const ext = rc.crlEntryExtensions?.extensions.find((e) => e.extnID === OID_REASON_CODE);
  if (ext) {
    // extnValue holds the DER of a CRLReason ENUMERATED.
    const parsed = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView);
    const code = parsed.result instanceof asn1js.Enumerated ? parsed.result.valueBlock.valueDec : undefined;
    const reason = code === undefined ? undefined : REASON_BY_CODE.get(code);
    if (!reason) throw new CrlError(`${where} (serial ${out.serial}): unreadable reasonCode`);
    out.reason = reason;
  }
  return out;
}
