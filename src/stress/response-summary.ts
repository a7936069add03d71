// Reads what every response of a stress run is counted by: its responseStatus and each certificate status.
import { readSingle, TAG } from '../ocsp/tlv';

export type CertStatusName = 'good' | 'revoked' | 'unknown';

export interface ResponseSummary {
  /** RFC 6960 section 4.2.1 name (successful, tryLater, ...) or "status N" for a value it does not define. */
  responseStatus: string;
  /** One per SingleResponse, in order; empty unless successful. */
  certStatuses: CertStatusName[];
}

const STATUS_NAMES = ['successful', 'malformedRequest', 'internalError', 'tryLater', undefined, 'sigRequired', 'unauthorized'];
// CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
const CERT_STATUS_BY_TAG = new Map<number, CertStatusName>([
  [TAG.ctxPrimitive(0), 'good'],
  [TAG.ctxConstructed(1), 'revoked'],
  [TAG.ctxPrimitive(2), 'unknown'],
]);

/**
 * Every response is counted, thousands a second, so this only frames DER with the project's TLV reader (a
 * pkijs decode costs about 100 µs, which would cap the load one client process can make); the sampled
 * responses are decoded and verified in full by pkijs (see verifier.ts). Throws on anything malformed.
 */
export function summarizeResponse(der: Buffer): ResponseSummary {
  const [status, responseBytes] = readSingle(der).children();
  if (!status || status.tag !== TAG.enumerated || status.contentLength !== 1) throw new Error('no responseStatus');
  const code = status.octet(0)!;
  const responseStatus = STATUS_NAMES[code] ?? `status ${code}`;
  if (code !== 0) return { responseStatus, certStatuses: [] };
  if (!responseBytes || responseBytes.tag !== TAG.ctxConstructed(0)) throw new Error('successful without responseBytes');
  const [, octets] = responseBytes.children()[0]!.children();
  if (!octets || octets.tag !== TAG.octetString) throw new Error('responseBytes without a response');
  const tbs = readSingle(octets.contents).children()[0]!;
  // ResponseData { version [0] (optional), responderID [1] or [2], producedAt, responses SEQUENCE OF, ... }
  const responses = tbs.children().find((e) => e.tag === TAG.sequence);
  if (!responses) throw new Error('ResponseData without responses');
  const certStatuses = responses.children().map((single) => {
    const s = CERT_STATUS_BY_TAG.get(single.children()[1]?.tag ?? -1);
    if (!s) throw new Error('SingleResponse without a certStatus');
    return s;
  });
  return { responseStatus, certStatuses };
}
