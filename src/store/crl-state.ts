// The last CRL applied per CA (full and delta kept apart), and the rule that refuses an older one.
import type { StatusWrite } from './status-rules';
import type { ImportResult } from './status-store';

export type CrlKind = 'full' | 'delta';

/** What is remembered of an applied CRL: enough to order the next one and to know when it is due. */
export interface AppliedCrl {
  ca: string;
  kind: CrlKind;
  /** RFC 5280 5.2.3 CRL number; absent when the issuer leaves it out (ordered by thisUpdate then). */
  crlNumber?: bigint;
  /** Delta CRLs: the complete CRL number they build on (5.2.4). */
  baseCrlNumber?: bigint;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Full CRLs: http URLs of the Freshest CRL extension, where the delta CRL is fetched. */
  freshestCrlUrls: string[];
}

export interface LastCrls {
  full?: AppliedCrl;
  delta?: AppliedCrl;
}

/** A CRL older than one already applied, or a delta CRL whose base was never applied: nothing was written. */
export class StaleCrlError extends Error {
  override name = 'StaleCrlError';
}

export interface CrlStateStore {
  lastCrls(ca: string): Promise<LastCrls>;
  /**
   * Writes `records` (the status merge rules apply) and records `crl` as the CA's last of its kind, in one
   * transaction, after checking it against what was applied before (crlOrderProblem); a StaleCrlError leaves
   * everything as it was.
   */
  applyCrl(crl: AppliedCrl, records: StatusWrite[]): Promise<ImportResult>;
}

/**
 * Why `crl` must not be applied after `last`, or undefined when it may. The same CRL again is allowed (an
 * idempotent re-import). Complete and delta CRLs share one numbering sequence (RFC 5280 5.2.3), so each kind is
 * also refused when older than the other kind applied, and a delta whose base is newer than the applied complete CRL
 * cannot be used (5.2.4).
 */
export function crlOrderProblem(last: LastCrls, crl: AppliedCrl): string | undefined {
  const same = last[crl.kind];
  const what = `${crl.kind} CRL ${label(crl)}`;
  if (same && isOlder(crl, same)) return `${what} is older than the ${crl.kind} CRL ${label(same)} already applied`;
  if (crl.kind === 'full') {
    // Re-applying it would undo what the newer delta CRL said (a hold it released would be held again).
    const d = last.delta;
    if (d?.crlNumber !== undefined && crl.crlNumber !== undefined && crl.crlNumber < d.crlNumber) {
      return `${what} is older than the delta CRL ${label(d)} already applied`;
    }
    return undefined;
  }
  const full = last.full;
  if (!full) return `${what} builds on CRL ${crl.baseCrlNumber}, but no full CRL was applied for CA "${crl.ca}": apply a full CRL first`;
  if (full.crlNumber !== undefined && crl.crlNumber! < full.crlNumber) {
    return `${what} is older than the full CRL ${label(full)} already applied`;
  }
  if (full.crlNumber === undefined || full.crlNumber < crl.baseCrlNumber!) {
    return `${what} builds on CRL ${crl.baseCrlNumber}, newer than the full CRL ${label(full)} applied: apply that full CRL first`;
  }
  return undefined;
}

function isOlder(crl: AppliedCrl, than: AppliedCrl): boolean {
  if (crl.crlNumber !== undefined && than.crlNumber !== undefined) return crl.crlNumber < than.crlNumber;
  return crl.thisUpdate.getTime() < than.thisUpdate.getTime();
}

function label(c: AppliedCrl): string {
  return `${c.crlNumber !== undefined ? `number ${c.crlNumber}` : '(no number)'} of ${c.thisUpdate.toISOString()}`;
}

/** The stored form of the URL list: one per line (a URL has no line break). */
export const urlsToText = (urls: string[]): string => urls.join('\n');
export const urlsFromText = (text: string | null): string[] => (text ? text.split('\n') : []);
