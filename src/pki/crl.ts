// Reads X.509 CRLs (RFC 5280 section 5), verified against their CA certificate, into what the status store needs.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { REASONS, ReasonName } from '../ocsp/reasons';
import { serialFromIntegerBytes } from '../ocsp/serial';
import type { LoadedCertificate } from './certificate';

export type CrlErrorKind = 'unparsable' | 'signature' | 'issuer' | 'unsupported';

/** A CRL that cannot be used; `kind` says why, the message names the CRL. */
export class CrlError extends Error {
  override name = 'CrlError';
  constructor(
    message: string,
    readonly kind: CrlErrorKind,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface CrlEntry {
  /** Canonical lowercase hex (see ocsp/serial.ts). */
  serial: string;
  revokedAt: Date;
  /** Absent when the entry has no reasonCode extension (RFC 5280 5.3.1: unspecified is best left out). */
  reason?: ReasonName;
}

export interface Crl {
  der: Buffer;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** RFC 5280 5.2.3; absent in CRLs of non-conforming issuers. */
  crlNumber?: bigint;
  /** Delta CRL (5.2.4): baseCrlNumber is the complete CRL it builds on. */
  isDelta: boolean;
  baseCrlNumber?: bigint;
  /** Freshest CRL extension (5.2.6): http: URLs only (as EJBCA's CRL downloader); never set on a delta CRL. */
  freshestCrlUrls: string[];
  /** X.509's expiredCertsOnCRL extension: entries of expired certificates stay on the CRL. */
  keepsExpired: boolean;
  entries: CrlEntry[];
}

const EXT = {
  authorityKeyIdentifier: '2.5.29.35',
  issuerAltName: '2.5.29.18',
  crlNumber: '2.5.29.20',
  deltaCrlIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  freshestCrl: '2.5.29.46',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  reasonCode: '2.5.29.21',
  holdInstructionCode: '2.5.29.23',
  invalidityDate: '2.5.29.24',
  certificateIssuer: '2.5.29.29',
  expiredCertsOnCrl: '2.5.29.60',
} as const;

// A CRL with a critical extension we do not understand must not be used (RFC 5280 5.2, 5.3).
const KNOWN_CRL_EXTENSIONS = new Set<string>([
  EXT.authorityKeyIdentifier, EXT.issuerAltName, EXT.crlNumber, EXT.deltaCrlIndicator, EXT.issuingDistributionPoint,
  EXT.freshestCrl, EXT.authorityInfoAccess,
]);
const KNOWN_ENTRY_EXTENSIONS = new Set<string>([EXT.reasonCode, EXT.holdInstructionCode, EXT.invalidityDate]);
const REASON_BY_CODE = new Map<number, ReasonName>(Object.entries(REASONS).map(([n, c]) => [c, n as ReasonName]));

const PEM_CRL = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/g;

/** True when the bytes look like a CRL rather than text such as an index.txt: PEM armour, or a DER SEQUENCE. */
export function looksLikeCrl(data: Buffer): boolean {
  return data[0] === 0x30 || data.toString('latin1').includes('-----BEGIN X509 CRL-----');
}

/** The DER CRLs in a file's bytes: every PEM "X509 CRL" block, or the bytes themselves when not PEM. */
export function crlBlocks(data: Buffer, where: string): Buffer[] {
  const text = data.toString('latin1');
  if (!text.includes('-----BEGIN')) return [data];
  const ders = [...text.matchAll(PEM_CRL)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  if (ders.length === 0) throw new CrlError(`${where}: no PEM "X509 CRL" block found`, 'unparsable');
  return ders;
}

/**
 * Parses one DER CRL and checks it was issued by `ca`: issuer name equal to the CA's subject, signature made by
 * the CA's key. `where` names the CRL in errors (file name, URL).
 */
export async function readCrl(der: Buffer, ca: LoadedCertificate, where: string): Promise<Crl> {
  const crl = parse(der, where);
  if (!crl.issuer.isEqual(ca.cert.subject)) {
    throw new CrlError(`${where}: CRL issued by "${nameText(crl.issuer)}", not by the CA "${nameText(ca.cert.subject)}"`, 'issuer');
  }
  const exts = crl.crlExtensions?.extensions ?? [];
  const unknown = exts.find((e) => e.critical && !KNOWN_CRL_EXTENSIONS.has(e.extnID));
  if (unknown) throw new CrlError(`${where}: unsupported critical CRL extension ${unknown.extnID}`, 'unsupported');
  let ok: boolean;
  try {
    ok = await crl.verify({ issuerCertificate: ca.cert });
  } catch (e) {
    throw new CrlError(`${where}: cannot verify the CRL signature: ${(e as Error).message}`, 'signature', { cause: e });
  }
  if (!ok) throw new CrlError(`${where}: bad signature: the CRL was not signed by the key of CA "${nameText(ca.cert.subject)}"`, 'signature');
  try {
    return describe(der, crl, where);
  } catch (e) {
    if (e instanceof CrlError) throw e;
    // pkijs and asn1js throw plain Errors on some malformed extension values (a bad time inside Freshest CRL, found
    // by the crl fuzz target): still a CRL that cannot be used, whoever signed it.
    throw new CrlError(`${where}: malformed CRL extension (${(e as Error).message})`, 'unparsable', { cause: e });
  }
}

function parse(der: Buffer, where: string): pkijs.CertificateRevocationList {
  try {
    const asn1 = asn1js.fromBER(der);
    if (asn1.offset === -1 || asn1.offset !== der.length) throw new Error('not a single DER element');
    return new pkijs.CertificateRevocationList({ schema: asn1.result });
  } catch (e) {
    throw new CrlError(`${where}: not a valid X.509 CRL (${(e as Error).message})`, 'unparsable', { cause: e });
  }
}

function describe(der: Buffer, crl: pkijs.CertificateRevocationList, where: string): Crl {
  const ext = (id: string) => crl.crlExtensions?.extensions.find((e) => e.extnID === id);
  const crlNumber = integerExtension(ext(EXT.crlNumber), where, 'CRL number');
  const baseCrlNumber = integerExtension(ext(EXT.deltaCrlIndicator), where, 'delta CRL indicator');
  const isDelta = baseCrlNumber !== undefined;
  // RFC 5280 5.2.4: a delta CRL must carry a CRL number, or it cannot be ordered against its base.
  if (isDelta && crlNumber === undefined) throw new CrlError(`${where}: delta CRL without a CRL number`, 'unparsable');
  const seen = new Set<string>();
  const entries = (crl.revokedCertificates ?? []).map((rc, i) => {
    const entry = entryOf(rc, `${where} (entry ${i + 1})`);
    if (seen.has(entry.serial)) throw new CrlError(`${where}: serial ${entry.serial} is listed twice`, 'unparsable');
    seen.add(entry.serial);
    return entry;
  });
  return {
    der,
    thisUpdate: crl.thisUpdate.value,
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.value } : {}),
    ...(crlNumber !== undefined ? { crlNumber } : {}),
    isDelta,
    ...(isDelta ? { baseCrlNumber } : {}),
    freshestCrlUrls: isDelta ? [] : httpUrls(ext(EXT.freshestCrl)),
    keepsExpired: ext(EXT.expiredCertsOnCrl) !== undefined,
    entries,
  };
}

function entryOf(rc: pkijs.RevokedCertificate, where: string): CrlEntry {
  const serial = serialFromIntegerBytes(new Uint8Array(rc.userCertificate.valueBlock.valueHexView));
  const entry: CrlEntry = { serial, revokedAt: rc.revocationDate.value };
  for (const e of rc.crlEntryExtensions?.extensions ?? []) {
    if (e.extnID === EXT.certificateIssuer) throw new CrlError(`${where}: indirect CRLs (certificate issuer extension) are not supported`, 'unsupported');
    if (e.critical && !KNOWN_ENTRY_EXTENSIONS.has(e.extnID)) {
      throw new CrlError(`${where}: unsupported critical CRL entry extension ${e.extnID}`, 'unsupported');
    }
    if (e.extnID !== EXT.reasonCode) continue;
    const value = asn1js.fromBER(e.extnValue.valueBlock.valueHexView).result;
    const code = value instanceof asn1js.Enumerated ? value.valueBlock.valueDec : undefined;
    const reason = code === undefined ? undefined : REASON_BY_CODE.get(code);
    if (!reason) throw new CrlError(`${where}: serial ${serial} has an invalid reason code`, 'unparsable');
    entry.reason = reason;
  }
  return entry;
}

function integerExtension(e: pkijs.Extension | undefined, where: string, what: string): bigint | undefined {
  if (!e) return undefined;
  const value = asn1js.fromBER(e.extnValue.valueBlock.valueHexView).result;
  if (!(value instanceof asn1js.Integer)) throw new CrlError(`${where}: the ${what} extension is not an INTEGER`, 'unparsable');
  const n = BigInt('0x' + (Buffer.from(value.valueBlock.valueHexView).toString('hex') || '0'));
  // RFC 5280 5.2.3: a non-negative integer of at most 20 octets.
  if (value.valueBlock.valueHexView[0]! & 0x80 || value.valueBlock.valueHexView.length > 21) {
    throw new CrlError(`${where}: the ${what} is negative or longer than 20 octets`, 'unparsable');
  }
  return n;
}

function httpUrls(e: pkijs.Extension | undefined): string[] {
  const points = (e?.parsedValue as pkijs.CRLDistributionPoints | undefined)?.distributionPoints ?? [];
  const urls: string[] = [];
  for (const p of points) {
    const names = Array.isArray(p.distributionPoint) ? p.distributionPoint : [];
    // GeneralName type 6: uniformResourceIdentifier.
    for (const n of names) if (n.type === 6 && /^http:\/\//i.test(String(n.value))) urls.push(String(n.value));
  }
  return urls;
}

/** "CN=x, O=y" for messages (attribute OIDs of common names shortened). */
function nameText(n: pkijs.RelativeDistinguishedNames): string {
  const short: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.6': 'C' };
  return n.typesAndValues.map((tv) => `${short[tv.type] ?? tv.type}=${tv.value.valueBlock.value}`).join(', ');
}
