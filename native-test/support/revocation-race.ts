// The revocation race's data and writers: serials imported good through an index.txt, revocations split among the
// four writers (ocsp-hsm revoke, import index, import crl, the publishing API), and the writers run on a schedule
// while the pre-signer runs. Every write is tried once: acknowledged (exit 0, HTTP 2xx) or recorded as failed.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CrlEntry } from '../../src/pki/crl';
import type { ReasonName } from '../../src/ocsp/reasons';

export type Writer = 'revoke' | 'index' | 'crl' | 'api';
export const WRITERS: readonly Writer[] = ['revoke', 'index', 'crl', 'api'];

export interface Revocation {
  /** Canonical hex. */
  serial: string;
  /** Whole seconds: index.txt and CRLs carry no fractions. */
  revokedAt: Date;
  reason: ReasonName;
  writer: Writer;
}

export interface RacePlan {
  serials: string[];
  notAfter: Date;
  revocations: Revocation[];
}

// Final reasons only: a certificateHold would be released by the next index.txt saying V (README, status rules).
const REASONS: ReasonName[] = ['keyCompromise', 'superseded', 'affiliationChanged', 'cessationOfOperation', 'privilegeWithdrawn'];

/** `certificates` random serials, of which disjoint random sets are revoked by each writer. */
export function racePlan(certificates: number, perWriter: Record<Writer, number>): RacePlan {
  const set = new Set<string>();
  // 16 hex digits starting 1-7: canonical (no leading zero) and a positive INTEGER without padding.
  while (set.size < certificates) set.add(`${1 + (randomBytes(1)[0]! % 7)}${randomBytes(8).toString('hex').slice(1)}`);
  const serials = [...set];
  const shuffled = [...serials];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = randomBytes(4).readUInt32BE() % (i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const dayAgo = Math.floor(Date.now() / 1000) * 1000 - 86_400_000;
  const revocations: Revocation[] = [];
  for (const writer of WRITERS) {
    for (let i = 0; i < perWriter[writer]; i++) {
      const n = revocations.length;
      revocations.push({ serial: shuffled[n]!, revokedAt: new Date(dayAgo + n * 1000), reason: REASONS[n % REASONS.length]!, writer });
    }
  }
  return { serials, notAfter: new Date(Math.floor(Date.now() / 1000) * 1000 + 365 * 86_400_000), revocations };
}

/** YYMMDDHHMMSSZ, as `openssl ca` writes index.txt. */
function indexTime(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;
}

/** The CA's index.txt: every serial, R (date and reason) for those in `revoked`, V for the rest. */
export function indexText(plan: RacePlan, revoked: Iterable<Revocation>): string {
  const bySerial = new Map([...revoked].map((r) => [r.serial, r]));
  const expiry = indexTime(plan.notAfter);
  return plan.serials
    .map((s) => {
      const r = bySerial.get(s);
      const hex = s.toUpperCase();
      return r ? `R\t${expiry}\t${indexTime(r.revokedAt)},${r.reason}\t${hex}\tunknown\t/CN=${hex}` : `V\t${expiry}\t\t${hex}\tunknown\t/CN=${hex}`;
    })
    .join('\n')
    .concat('\n');
}

export interface WriteRecord {
  writer: Writer;
  what: string;
  ok: boolean;
  /** The CLI's stderr or the API's answer, when it failed. */
  detail: string;
  ms: number;
  /** Date.now() when it ended. */
  endedAt: number;
  /** The serials it revoked (a cumulative file's earlier ones too), acknowledged when `ok`. */
  serials: string[];
}

/** A file one writer imports, and the revocations it holds (cumulative files hold earlier ones too). */
export interface WriterFile {
  file: string;
  revocations: Revocation[];
}

export interface WritersSchedule {
  /** When each import index / import crl starts, in ms from the writers' start (one file each, in order, never before the previous one ended). */
  indexAtMs: number[];
  crlAtMs: number[];
  /** `ocsp-hsm revoke` processes run in this many lanes, each waiting this long between its processes. */
  revokeLanes: number;
  revokePauseMs: number;
  /** Publishing API events are spread evenly over this long, this many in flight at most. */
  apiSpreadMs: number;
  apiConcurrency: number;
}

export interface WritersContext {
  plan: RacePlan;
  indexFiles: WriterFile[];
  crlFiles: WriterFile[];
  schedule: WritersSchedule;
  /** Runs the CLI with the suite's config. */
  cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }>;
  /** POSTs one revocation event (the i-th); resolves with the HTTP status and body. */
  publish(r: Revocation, i: number): Promise<{ status: number; body: string }>;
  /** Told before a write starts (the traffic then asks about these serials) and when it is acknowledged. */
  pending(serials: string[]): void;
  ack(serials: string[], at: number): void;
}

/** Runs every writer on its schedule; resolves when all writes have ended, with one record per write. */
export async function runWriters(ca: string, ctx: WritersContext): Promise<WriteRecord[]> {
  const records: WriteRecord[] = [];
  const start = Date.now();
  const at = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, start + ms - Date.now())));
  const write = async (writer: Writer, what: string, fresh: Revocation[], acked: Revocation[], run: () => Promise<string | undefined>) => {
    ctx.pending(fresh.map((r) => r.serial));
    const t0 = Date.now();
    const failure = await run();
    const t1 = Date.now();
    const serials = acked.map((r) => r.serial);
    if (failure === undefined) ctx.ack(serials, t1);
    records.push({ writer, what, ok: failure === undefined, detail: failure ?? '', ms: t1 - t0, endedAt: t1, serials });
  };
  const cliWrite = (writer: Writer, what: string, args: string[], fresh: Revocation[], acked: Revocation[]) =>
    write(writer, what, fresh, acked, async () => {
      const r = await ctx.cli(args);
      return r.status === 0 ? undefined : `exit ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
    });
  // One after the other, as a CA publishes them: a CRL older than one applied is refused (RFC 5280 5.2.3).
  const imports = async (files: WriterFile[], times: number[], args: (file: string) => string[], writer: Writer) => {
    for (const [i, f] of files.entries()) {
      await at(times[i]!);
      const earlier = new Set(files.slice(0, i).flatMap((g) => g.revocations.map((r) => r.serial)));
      const fresh = f.revocations.filter((r) => !earlier.has(r.serial));
      await cliWrite(writer, `${args(f.file).slice(0, 2).join(' ')} ${basename(f.file)} (${fresh.length} new)`, args(f.file), fresh, f.revocations);
    }
  };
  const byWriter = (w: Writer) => ctx.plan.revocations.filter((r) => r.writer === w);
  const { schedule } = ctx;
  const revokes = byWriter('revoke');
  const lanes = Array.from({ length: schedule.revokeLanes }, async (_, lane) => {
    await at(lane * 300);
    for (let i = lane; i < revokes.length; i += schedule.revokeLanes) {
      const r = revokes[i]!;
      const args = ['revoke', '--ca', ca, '--serial', r.serial.toUpperCase(), '--reason', r.reason, '--date', r.revokedAt.toISOString()];
      await cliWrite('revoke', `revoke ${r.serial}`, args, [r], [r]);
      await new Promise((res) => setTimeout(res, schedule.revokePauseMs));
    }
  });
  const events = byWriter('api');
  let next = 0;
  const posters = Array.from({ length: schedule.apiConcurrency }, async () => {
    for (let i = next++; i < events.length; i = next++) {
      const r = events[i]!;
      await at((i * schedule.apiSpreadMs) / events.length);
      await write('api', `POST revocation ${r.serial}`, [r], [r], async () => {
        const res = await ctx.publish(r, i).catch((e: Error) => ({ status: 0, body: e.message }));
        return res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}: ${res.body}`;
      });
    }
  });
  await Promise.all([
    imports(ctx.indexFiles, schedule.indexAtMs, (f) => ['import', 'index', '--ca', ca, f], 'index'),
    imports(ctx.crlFiles, schedule.crlAtMs, (f) => ['import', 'crl', '--ca', ca, f], 'crl'),
    ...lanes,
    ...posters,
  ]);
  return records;
}

/**
 * The files the importing writers read, written to `dir`: `imports` cumulative index.txt files (each the whole CA,
 * with R lines for its share so far) and as many full CRLs (numbered 1, 2, ...) made by `signCrl`.
 */
export async function writerFiles(
  plan: RacePlan,
  dir: string,
  name: string,
  imports: { index: number; crl: number },
  signCrl: (file: string, crlNumber: bigint, entries: CrlEntry[]) => Promise<string>,
): Promise<{ indexFiles: WriterFile[]; crlFiles: WriterFile[] }> {
  const cumulative = (writer: Writer, parts: number) => {
    const all = plan.revocations.filter((r) => r.writer === writer);
    return Array.from({ length: parts }, (_, k) => all.slice(0, Math.round(((k + 1) * all.length) / parts)));
  };
  const indexFiles = cumulative('index', imports.index).map((revocations, k) => {
    const file = join(dir, `${name}-index${k + 1}.txt`);
    writeFileSync(file, indexText(plan, revocations));
    return { file, revocations };
  });
  const crlFiles: WriterFile[] = [];
  for (const [k, revocations] of cumulative('crl', imports.crl).entries()) {
    const entries = revocations.map((r) => ({ serial: r.serial, revokedAt: r.revokedAt, reason: r.reason }));
    crlFiles.push({ file: await signCrl(`${name}-crl${k + 1}.pem`, BigInt(k + 1), entries), revocations });
  }
  return { indexFiles, crlFiles };
}

/** Two revocations of each writer and four certificates never revoked, with what `ocsp-hsm status` must say of them. */
export function statusSample(plan: RacePlan, ca: string): { serial: string; expected: RegExp }[] {
  const revoked = new Set(plan.revocations.map((r) => r.serial));
  return [
    ...WRITERS.flatMap((w) => plan.revocations.filter((r) => r.writer === w).slice(-2)).map((r) => ({
      serial: r.serial,
      expected: new RegExp(`^${ca} serial ${r.serial}: revoked, at ${r.revokedAt.toISOString()}, reason ${r.reason}(,|$)`),
    })),
    ...plan.serials.filter((s) => !revoked.has(s)).slice(0, 4).map((serial) => ({ serial, expected: new RegExp(`^${ca} serial ${serial}: good(,|$)`) })),
  ];
}
