// `compliance: cabf`: the settings the CA/Browser Forum TLS Baseline Requirements (BR) forbid, each refused with the
// field and the section (README "CA/B Forum profile"). Settings only; the CA certificate's part (non-issued serials
// answered good) is checked where certificates are read (cli/signer-binding.ts).
import { formatMs, intervalProblem, MAX_INTERVAL_MS, updateDeadlineAfterMs, validityIntervalMs } from '../compliance/cabf-timing';

export type Compliance = 'none' | 'cabf';

/** The parts of the parsed config the profile looks at. */
interface ProfileInput {
  server: { responseTimeout: number };
  defaults: { compliance: Compliance; validity: number; preProduction: { enabled: boolean; finalResponsesBefore?: number | undefined } };
  preSigner: { interval?: number | undefined; refreshAfter: number };
  profiles: Record<string, { validity?: number | undefined }>;
  cas: {
    name: string;
    compliance?: Compliance | undefined;
    validity?: number | undefined;
    preProduction?: { enabled?: boolean | undefined; finalResponsesBefore?: number | undefined } | undefined;
  }[];
}

export interface ProfileProblem {
  path: (string | number)[];
  message: string;
}

/** BR 4.10.2: "a response time of ten seconds or less under normal operating conditions". */
const MAX_RESPONSE_TIME_MS = 10_000;

/** Every refusal, once per field (a default shared by several CAs is reported once). */
export function cabfProblems(cfg: ProfileInput): ProfileProblem[] {
  const found = new Map<string, ProfileProblem>();
  const add = (path: (string | number)[], message: string) => {
    const key = JSON.stringify(path);
    if (!found.has(key)) found.set(key, { path, message });
  };
  const cabf = cfg.cas.flatMap((c, i) => ((c.compliance ?? cfg.defaults.compliance) === 'cabf' ? [{ c, i }] : []));
  if (cabf.length === 0) return [];
  const names = cabf.map(({ c }) => `"${c.name}"`).join(', ');
  if (cfg.server.responseTimeout > MAX_RESPONSE_TIME_MS) {
    add(['server', 'responseTimeout'], `${formatMs(cfg.server.responseTimeout)} lets an answer take longer than the ten seconds BR 4.10.2 allows (compliance: cabf, CA ${names})`);
  }
  for (const [id, p] of Object.entries(cfg.profiles)) {
    const why = p.validity === undefined ? undefined : validityProblem(p.validity);
    if (why) add(['profiles', id, 'validity'], `${why} (compliance: cabf, certificates of CA ${names} with this profile)`);
  }
  for (const { c, i } of cabf) {
    const tag = `(compliance: cabf, CA "${c.name}")`;
    const validity = c.validity ?? cfg.defaults.validity;
    const validityPath = c.validity !== undefined ? ['cas', i, 'validity'] : ['defaults', 'validity'];
    const why = validityProblem(validity);
    if (why) add(validityPath, `${why} ${tag}`);
    const enabled = c.preProduction?.enabled ?? cfg.defaults.preProduction.enabled;
    if (!enabled || why) continue;
    if ((c.preProduction?.finalResponsesBefore ?? cfg.defaults.preProduction.finalResponsesBefore) !== undefined) {
      const path = c.preProduction?.finalResponsesBefore !== undefined ? ['cas', i, 'preProduction', 'finalResponsesBefore'] : ['defaults', 'preProduction', 'finalResponsesBefore'];
      add(path, `final responses carry nextUpdate 9999-12-31, a validity interval over the 10 days BR 4.9.9 allows ${tag}`);
    }
    refreshProblems(cfg, validity, validityPath, tag, add);
  }
  return [...found.values()];
}

function validityProblem(validityMs: number): string | undefined {
  if (validityMs === 0) return '0 gives responses without nextUpdate; BR 4.9.9 requires a validity interval of 8 hours to 10 days';
  const interval = validityIntervalMs(0, validityMs);
  const why = intervalProblem(interval);
  if (!why) return undefined;
  // The interval counts thisUpdate and nextUpdate both (inclusive): the longest validity is a second under 10 days.
  const hint = interval > MAX_INTERVAL_MS ? '; at most 863999s (thisUpdate through nextUpdate count inclusive)' : '';
  return `${formatMs(validityMs)} gives ${why}${hint}`;
}

/**
 * Pre-produced responses are served until the pre-signer replaces them, and never past BR 4.9.9's update deadline
 * (source/usable-until.ts: past it each request is signed through the HSM). The pre-signer re-signs one once
 * refreshAfter × the CA's validity has passed, at its next run (preSigner.interval), which must come before that
 * deadline, for the CA's validity and for every profile's (profiles are refreshed on their CA's schedule).
 */
function refreshProblems(cfg: ProfileInput, validity: number, validityPath: (string | number)[], tag: string, add: (path: (string | number)[], m: string) => void): void {
  const interval = cfg.preSigner.interval;
  if (interval === undefined) {
    add(['preSigner', 'interval'], `required with pre-production: without it stored responses are only refreshed by \`ocsp-hsm presign\`, and past the update time BR 4.9.9 requires every request is signed through the HSM ${tag}`);
    return;
  }
  const refreshedBy = cfg.preSigner.refreshAfter * validity + interval;
  const schedule = `refreshAfter ${cfg.preSigner.refreshAfter} × validity ${formatMs(validity)} + preSigner.interval ${formatMs(interval)} = ${formatMs(refreshedBy)} after thisUpdate`;
  const deadline = updateDeadlineAfterMs(validity);
  if (refreshedBy > deadline) {
    add(['preSigner', 'refreshAfter'], `stored responses are refreshed up to ${schedule}, after the update BR 4.9.9 requires ${formatMs(deadline)} after thisUpdate for ${validityPath.join('.').replace(/\.(\d+)/g, '[$1]')} ${formatMs(validity)} ${tag}`);
  }
  for (const [id, p] of Object.entries(cfg.profiles)) {
    if (p.validity === undefined || validityProblem(p.validity)) continue;
    const profileDeadline = updateDeadlineAfterMs(p.validity);
    if (refreshedBy > profileDeadline) {
      add(['profiles', id, 'validity'], `${formatMs(p.validity)}: responses are refreshed on their CA's schedule, up to ${schedule}, after the update BR 4.9.9 requires ${formatMs(profileDeadline)} after thisUpdate ${tag}`);
    }
  }
}
