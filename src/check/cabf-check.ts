// What `ocsp-hsm check` reports about a stored response of a CA under `compliance: cabf`: the CA/B Forum TLS Baseline
// Requirements' validity interval (4.9.9), no reasonCode in singleExtensions (7.3.2), and a response that should
// have been replaced by now (4.9.9's update deadline).
import type * as pkijs from 'pkijs';
import { intervalProblem, requiredUpdateMs, validityIntervalMs } from '../compliance/cabf-timing';
import type { StoredResponse } from '../store/response-store';
import type { CertificateRecord } from '../store/status-store';
import { isoSeconds } from './status-compare';

const REASON_CODE = '2.5.29.21';

export interface CabfCheck {
  nowMs: number;
  /** The latest response for its certificate and hash (only that one is served, and must be current). */
  latest: boolean;
}

export function cabfProblems(single: pkijs.SingleResponse, stored: StoredResponse, cert: CertificateRecord | undefined, o: CabfCheck): string[] {
  const problems: string[] = [];
  const thisUpdate = stored.thisUpdate.getTime();
  const nextUpdate = stored.nextUpdate.getTime();
  const interval = intervalProblem(validityIntervalMs(thisUpdate, nextUpdate));
  if (interval) problems.push(interval);
  if ((single.singleExtensions ?? []).some((e) => e.extnID === REASON_CODE)) {
    problems.push('reasonCode in singleExtensions, which BR 7.3.2 forbids (the reason belongs in revokedInfo)');
  }
  const required = requiredUpdateMs(thisUpdate, nextUpdate);
  // An expired certificate's answer need not be updated; a superseded response was.
  const answered = !cert?.notAfter || cert.notAfter.getTime() > required;
  if (o.latest && !interval && answered && o.nowMs > required) {
    problems.push(`past its required update time ${isoSeconds(new Date(required))} (BR 4.9.9)`);
  }
  return problems;
}
