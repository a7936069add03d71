// Parses an OpenSSL CA database (index.txt) into certificate records; any bad line fails the whole file.
import { parseReason, ReasonName } from '../ocsp/reasons';
import { parseSerial } from '../ocsp/serial';
import type { CertificateRecord } from '../store/status-store';

export class IndexParseError extends Error {
  override name = 'IndexParseError';
}

export function parseOpensslIndex(text: string, ca: string, file = 'index.txt'): CertificateRecord[] {
  const records: CertificateRecord[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    const f = line.split('\t');
    if (f.length < 6) throw new IndexParseError(`${where}: expected 6 tab-separated fields, found ${f.length}`);
    const [flag, expiry, revocation, serialText] = f as [string, string, string, string];
    const serial = wrap(where, () => parseSerial(serialText));
    if (seen.has(serial)) throw new IndexParseError(`${where}: serial ${serialText} appears twice`);
    seen.add(serial);
    const notAfter = wrap(where, () => parseIndexTime(expiry));
    if (flag === 'V' || flag === 'E') {
      records.push({ ca, serial, status: 'good', notAfter });
    } else if (flag === 'R') {
      const [time, reason] = wrap(where, () => parseRevocation(revocation));
      records.push({ ca, serial, status: 'revoked', revokedAt: time, reason, notAfter });
    } else {
      throw new IndexParseError(`${where}: unknown status flag "${flag}" (expected V, R or E)`);
    }
  });
  return records;
}

function wrap<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new IndexParseError(`${where}: ${(e as Error).message}`);
  }
}

/** OpenSSL writes UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
export function parseIndexTime(text: string): Date {
  const m = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) throw new RangeError(`malformed time "${text}" (expected YYMMDDHHMMSSZ)`);
  let year = Number(m[1]);
  if (m[1]!.length === 2) year += year < 50 ? 2000 : 1900;
  const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  if (Number.isNaN(d.getTime()) || d.getUTCMonth() !== Number(m[2]) - 1) throw new RangeError(`invalid date "${text}"`);
  return d;
}

// OpenSSL's revocation field: time[,reason[,extra]]; keyTime/CAkeyTime carry a compromise time,
// holdInstruction an OID.
function parseRevocation(field: string): [Date, ReasonName | undefined] {
  if (!field) throw new RangeError('revoked entry without a revocation date');
  const [time, reason] = field.split(',');
  const revokedAt = parseIndexTime(time!);
  if (!reason) return [revokedAt, undefined];
  const special: Record<string, ReasonName> = {
    keytime: 'keyCompromise',
    cakeytime: 'cACompromise',
    holdinstruction: 'certificateHold',
  };
  return [revokedAt, special[reason.toLowerCase()] ?? parseReason(reason)];
}
