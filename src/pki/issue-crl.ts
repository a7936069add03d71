// Issues X.509 CRLs signed through a Signer (so a CA key can stay inside the token); for tests and demos.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Signer } from '../signing/signer';
import { toArrayBuffer } from '../ocsp/der';
import { REASONS } from '../ocsp/reasons';
import type { CrlEntry } from './crl';
import type { LoadedCertificate } from './certificate';

export interface CrlRequest {
  issuer: LoadedCertificate;
  signer: Signer;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber: bigint;
  /** Makes it a delta CRL on this complete CRL number. */
  baseCrlNumber?: bigint;
  freshestCrlUrls?: string[];
  entries: CrlEntry[];
}

export async function issueCrl(req: CrlRequest): Promise<Buffer> {
  const sigAlg = new pkijs.AlgorithmIdentifier({
    algorithmId: req.signer.algorithm.oid,
    ...(req.signer.algorithm.keyType === 'rsa' ? { algorithmParams: new asn1js.Null() } : {}),
  });
  const ext = (extnID: string, critical: boolean, value: asn1js.BaseBlock) => new pkijs.Extension({ extnID, critical, extnValue: value.toBER() });
  const extensions = [ext('2.5.29.20', false, integer(req.crlNumber))];
  if (req.baseCrlNumber !== undefined) extensions.push(ext('2.5.29.27', true, integer(req.baseCrlNumber)));
  if (req.freshestCrlUrls?.length) {
    const points = req.freshestCrlUrls.map(
      (url) => new pkijs.DistributionPoint({ distributionPoint: [new pkijs.GeneralName({ type: 6, value: url })] }),
    );
    extensions.push(ext('2.5.29.46', false, new pkijs.CRLDistributionPoints({ distributionPoints: points }).toSchema()));
  }
  const crl = new pkijs.CertificateRevocationList({
    version: 1,
    signature: sigAlg,
    signatureAlgorithm: sigAlg,
    issuer: req.issuer.cert.subject,
    thisUpdate: time(req.thisUpdate),
    ...(req.nextUpdate ? { nextUpdate: time(req.nextUpdate) } : {}),
    crlExtensions: new pkijs.Extensions({ extensions }),
  });
  if (req.entries.length > 0) {
    crl.revokedCertificates = req.entries.map(
      (e) =>
        new pkijs.RevokedCertificate({
          userCertificate: integer(BigInt('0x' + e.serial)),
          revocationDate: time(e.revokedAt),
          ...(e.reason
            ? { crlEntryExtensions: new pkijs.Extensions({ extensions: [ext('2.5.29.21', false, new asn1js.Enumerated({ value: REASONS[e.reason] }))] }) }
            : {}),
        }),
    );
  }
  // pkijs only signs with a WebCrypto key; the TBS encoder it uses for that is protected, not private.
  const tbs = Buffer.from((crl as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS().toBER());
  crl.tbsView = new Uint8Array(tbs);
  crl.signatureValue = new asn1js.BitString({ valueHex: toArrayBuffer(await req.signer.sign(tbs)) });
  return Buffer.from(crl.toSchema(false).toBER());
}

function integer(n: bigint): asn1js.Integer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  const b = Buffer.from(hex, 'hex');
  return new asn1js.Integer({ valueHex: toArrayBuffer(b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b) });
}

// RFC 5280 section 5.1.2.4: UTCTime through 2049.
function time(d: Date): pkijs.Time {
  return new pkijs.Time({ type: d.getUTCFullYear() < 2050 ? 0 : 1, value: new Date(Math.floor(d.getTime() / 1000) * 1000) });
}
