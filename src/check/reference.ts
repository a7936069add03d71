// The reference a CA's store entries are checked against: an OpenSSL index.txt or a CRL of that CA.
import { readFileSync } from 'node:fs';
import type { LoadedCertificate } from '../pki/certificate';
import { parseOpensslIndex } from '../pki/openssl-index';
import type { CertificateRecord } from '../store/status-store';
import { crlBlocks, looksLikeCrl, readCrl } from '../pki/crl';
import type { StatusFacts } from './status-compare';

export interface ReferenceEntry extends StatusFacts {
  serial: string;
}

export interface Reference {
  kind: 'index' | 'crl';
  file: string;
  /** In bytewise serial order, the order the store lists certificates in. */
  entries: ReferenceEntry[];
  /**
   * Whether the reference would list this store entry, so that its absence makes it extra. An index.txt lists
   * every certificate; a CRL only revoked ones, and (without expiredCertsOnCRL) may drop those whose certificate
   * expired before it was issued (RFC 5280 section 3.3).
   */
  wouldList(rec: CertificateRecord): 'yes' | 'no' | 'expired';
}

export async function readReference(file: string, ca: { name: string; cert: LoadedCertificate }): Promise<Reference> {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  if (!looksLikeCrl(data)) {
    const entries = parseOpensslIndex(data.toString('utf8'), ca.name, file).map(
      ({ serial, status, revokedAt, reason }): ReferenceEntry => ({ serial, status, ...(revokedAt ? { revokedAt } : {}), ...(reason ? { reason } : {}) }),
    );
    return { kind: 'index', file, entries: sortBySerial(entries), wouldList: () => 'yes' };
  }
  const blocks = crlBlocks(data, file);
  if (blocks.length !== 1) throw new Error(`${file}: holds ${blocks.length} CRLs; give one full CRL`);
  // Verified against the CA (issuer name and signature); serials listed twice are refused there.
  const crl = await readCrl(blocks[0]!, ca.cert, file);
  if (crl.isDelta) throw new Error(`${file}: a delta CRL lists only changes; give a full CRL`);
  return {
    kind: 'crl',
    file,
    entries: sortBySerial(crl.entries.map((e) => ({ ...e, status: 'revoked' as const }))),
    wouldList: (rec) => {
      if (rec.status !== 'revoked') return 'no';
      if (!crl.keepsExpired && rec.notAfter && rec.notAfter < crl.thisUpdate) return 'expired';
      return 'yes';
    },
  };
}

function sortBySerial(entries: ReferenceEntry[]): ReferenceEntry[] {
  return entries.sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
}
