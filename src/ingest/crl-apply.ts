// Applies verified CRLs of one CA to the store: listed serials revoked, removeFromCRL entries released.
import type { Crl } from '../pki/crl';
import type { AppliedCrl, CrlStateStore, LastCrls } from '../store/crl-state';
import { crlOrderProblem, StaleCrlError } from '../store/crl-state';
import type { StatusWrite } from '../store/status-rules';
import type { ImportResult, StatusStore } from '../store/status-store';

/** A CRL read and verified from somewhere (`where`: a file name or URL, for messages). */
export interface VerifiedCrl {
  crl: Crl;
  where: string;
}

export interface AppliedCrlResult extends VerifiedCrl {
  result: ImportResult;
}

export function appliedCrl(ca: string, crl: Crl): AppliedCrl {
  return {
    ca,
    kind: crl.isDelta ? 'delta' : 'full',
    ...(crl.crlNumber !== undefined ? { crlNumber: crl.crlNumber } : {}),
    ...(crl.baseCrlNumber !== undefined ? { baseCrlNumber: crl.baseCrlNumber } : {}),
    thisUpdate: crl.thisUpdate,
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}),
    freshestCrlUrls: crl.freshestCrlUrls,
  };
}

/**
 * The status records a CRL states. A removeFromCRL entry (RFC 5280 5.3.1, delta CRLs) says "good": the merge
 * rules (status-rules.ts) release a certificateHold with it and leave any other revocation as it is.
 */
export function crlRecords(ca: string, crl: Crl): StatusWrite[] {
  return crl.entries.map((e) =>
    e.reason === 'removeFromCRL'
      ? { ca, serial: e.serial, status: 'good', releaseOnly: true }
      : { ca, serial: e.serial, status: 'revoked', revokedAt: e.revokedAt, ...(e.reason ? { reason: e.reason } : {}) },
  );
}

/** Full CRLs first, each group in the order given: a delta CRL needs its base applied before it. */
export function fullBeforeDelta<T extends VerifiedCrl>(crls: T[]): T[] {
  return [...crls.filter((c) => !c.crl.isDelta), ...crls.filter((c) => c.crl.isDelta)];
}

/**
 * Applies CRLs in order, each in its own transaction. The order of all of them is checked against the store
 * first, so a stale one among them is refused (StaleCrlError naming it) before any is applied.
 */
export async function applyCrls(store: StatusStore & CrlStateStore, ca: string, crls: VerifiedCrl[]): Promise<AppliedCrlResult[]> {
  const state: LastCrls = { ...(await store.lastCrls(ca)) };
  for (const c of crls) {
    const applied = appliedCrl(ca, c.crl);
    const problem = crlOrderProblem(state, applied);
    if (problem) throw new StaleCrlError(`${c.where}: ${problem}`);
    state[applied.kind] = applied;
  }
  const out: AppliedCrlResult[] = [];
  for (const c of crls) {
    try {
      out.push({ ...c, result: await store.applyCrl(appliedCrl(ca, c.crl), crlRecords(ca, c.crl)) });
    } catch (e) {
      // Another writer applied a newer CRL since the check above.
      if (e instanceof StaleCrlError) throw new StaleCrlError(`${c.where}: ${e.message}`);
      throw e;
    }
  }
  return out;
}

/** "full CRL number 4 of 2026-01-01T00:00:00.000Z" for reports. */
export function describeCrl(crl: Crl): string {
  const number = crl.crlNumber !== undefined ? `number ${crl.crlNumber}` : '(no number)';
  const base = crl.isDelta ? ` (base ${crl.baseCrlNumber})` : '';
  return `${crl.isDelta ? 'delta' : 'full'} CRL ${number}${base} of ${crl.thisUpdate.toISOString()}`;
}
