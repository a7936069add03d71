// Random status-write sequences from every writer (CLI revoke, import certs and index, CRLs, the publishing API,
// batches), run on a store and checked after each step against status-rules-model.ts: shared by the SQLite and
// PostgreSQL property tests.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../src/clock';
import { appliedCrl, crlRecords } from '../../src/ingest/crl-apply';
import { REASON_NAMES, type ReasonName } from '../../src/ocsp/reasons';
import type { Crl } from '../../src/pki/crl';
import { parseOpensslIndex } from '../../src/pki/openssl-index';
import { PublishError } from '../../src/publish/errors';
import { parseIssuance } from '../../src/publish/events';
import { Publisher } from '../../src/publish/publisher';
import type { CrlStateStore } from '../../src/store/crl-state';
import type { StatusWrite } from '../../src/store/status-rules';
import type { CertificateRecord, ImportResult, StatusStore } from '../../src/store/status-store';
import { Applied, applyWrite, counts, expiresOn, HOLD, isFinal, isHold, ModelRecord, ModelWrite, outcomeOf, revokedOn, same, view } from './status-rules-model';

// Few serials, so that writes meet the same certificate often.
const SERIALS = ['1', '2', 'a', 'ff'];

interface IndexLine { serial: string; flag: 'V' | 'E' | 'R'; notAfter: number; day: number; reason: string }
/** One writer's call, as the CLI, the CRL importer or the publishing API would make it. */
type Step =
  | { by: 'cli revoke' | 'api revoked'; serial: string; day: number; reason: ReasonName }
  | { by: 'import certs'; certs: { serial: string; notAfter: number }[]; profile?: string }
  | { by: 'import index'; lines: IndexLine[] }
  | { by: 'crl'; delta: boolean; entries: { serial: string; day: number; reason?: ReasonName }[] }
  | { by: 'api issued'; serial: string; notAfter?: number; profile?: string }
  | { by: 'batch'; writes: ModelWrite[] };

const serial = fc.constantFrom(...SERIALS);
const day = fc.integer({ min: 0, max: 3 });
const notAfter = fc.integer({ min: 0, max: 2 });
const profile = fc.constantFrom('tls', 'email');
// The reasons the rules treat apart come most often. removeFromCRL is no revocation: only CRLs and the API carry it.
const otherReasons = REASON_NAMES.filter((r) => !['keyCompromise', 'superseded', HOLD, 'removeFromCRL'].includes(r));
const reason = fc.oneof(
  { arbitrary: fc.constantFrom<ReasonName>('keyCompromise', 'superseded', HOLD), weight: 4 },
  { arbitrary: fc.constantFrom(...otherReasons), weight: 1 },
);
const orRemove = fc.oneof(reason, fc.constant<ReasonName>('removeFromCRL'));
const bySerial = { selector: (x: { serial: string }) => x.serial, minLength: 1, maxLength: 4 };
// As OpenSSL writes them; keyTime and holdInstruction carry a third field that the parser must skip.
const indexReason = fc.constantFrom('', 'keyCompromise', 'keyTime', 'certificateHold', 'holdInstruction', 'superseded', 'CACompromise', 'unspecified');
const indexLine = fc.record({ serial, flag: fc.constantFrom<IndexLine['flag']>('V', 'E', 'R', 'R'), notAfter, day, reason: indexReason });
const modelWrite: fc.Arbitrary<ModelWrite> = fc.oneof(
  fc.record({ serial, kind: fc.constant('good' as const), notAfter, profile }, { requiredKeys: ['serial', 'kind'] }),
  fc.record({ serial, kind: fc.constant('release' as const) }),
  fc.record({ serial, kind: fc.constant('revoke' as const), day, reason, notAfter }, { requiredKeys: ['serial', 'kind', 'day'] }),
);
const crl = fc.boolean().chain((delta) => {
  // RFC 5280 5.3.1: removeFromCRL appears on delta CRLs only.
  const entry = fc.record({ serial, day, reason: delta ? orRemove : reason }, { requiredKeys: ['serial', 'day'] });
  return fc.record({ by: fc.constant('crl' as const), delta: fc.constant(delta), entries: fc.uniqueArray(entry, bySerial) });
});

const steps: fc.Arbitrary<Step[]> = fc.array(
  fc.oneof(
    fc.record({ by: fc.constant('cli revoke' as const), serial, day, reason }),
    fc.record(
      { by: fc.constant('import certs' as const), certs: fc.array(fc.record({ serial, notAfter }), { minLength: 1, maxLength: 4 }), profile },
      { requiredKeys: ['by', 'certs'] },
    ),
    fc.record({ by: fc.constant('import index' as const), lines: fc.uniqueArray(indexLine, bySerial) }),
    crl,
    fc.record({ by: fc.constant('api issued' as const), serial, notAfter, profile }, { requiredKeys: ['by', 'serial'] }),
    fc.record({ by: fc.constant('api revoked' as const), serial, day, reason: orRemove }),
    // Several writes in one transaction, the same certificate more than once among them.
    fc.record({ by: fc.constant('batch' as const), writes: fc.array(modelWrite, { minLength: 2, maxLength: 6 }) }),
  ),
  { minLength: 1, maxLength: 12 },
);

/** What each step says about each certificate, in the order the writer sends it. */
function modelWrites(step: Step): ModelWrite[] {
  const revoke = (serial: string, day: number, reason: ReasonName | undefined, notAfter?: number): ModelWrite =>
    reason === 'removeFromCRL' ? { serial, kind: 'release' } : { serial, kind: 'revoke', day, reason, notAfter };
  switch (step.by) {
    case 'cli revoke':
    case 'api revoked':
      return [revoke(step.serial, step.day, step.reason)];
    case 'import certs':
      return step.certs.map((c) => ({ serial: c.serial, kind: 'good', notAfter: c.notAfter, profile: step.profile }));
    case 'import index': {
      const names: Record<string, ReasonName | undefined> = { '': undefined, keyTime: 'keyCompromise', holdInstruction: HOLD, CACompromise: 'cACompromise' };
      const name = (text: string) => (text in names ? names[text] : (text as ReasonName));
      const good = (l: IndexLine): ModelWrite => ({ serial: l.serial, kind: 'good', notAfter: l.notAfter });
      return step.lines.map((l) => (l.flag === 'R' ? revoke(l.serial, l.day, name(l.reason), l.notAfter) : good(l)));
    }
    case 'crl':
      return step.entries.map((e) => revoke(e.serial, e.day, e.reason));
    case 'api issued':
      return [{ serial: step.serial, kind: 'good', notAfter: step.notAfter, profile: step.profile }];
    case 'batch':
      return step.writes;
  }
}

export interface Target {
  store: StatusStore & CrlStateStore;
  /** A CA with nothing stored yet, its CRL numbering included. */
  ca: string;
  close(): Promise<void>;
}
type Snapshot = Map<string, CertificateRecord>;
interface Run extends Target {
  publisher: Publisher;
  crls: { number: number; full?: number };
}

/**
 * Runs fast-check over `numRuns` sequences, each on a fresh target. The seed is printed first, so that a failure
 * replays with OCSP_HSM_PROPERTY_SEED (and OCSP_HSM_PROPERTY_PATH from fast-check's report, for the shrunk case).
 */
export async function checkSequences(t: TestContext, numRuns: number, target: () => Promise<Target>): Promise<void> {
  const env = process.env;
  const seed = Number(env.OCSP_HSM_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const runs = Number(env.OCSP_HSM_PROPERTY_RUNS ?? numRuns);
  t.diagnostic(`fast-check seed ${seed}, ${runs} runs (replay: OCSP_HSM_PROPERTY_SEED=${seed})`);
  const property = fc.asyncProperty(steps, async (sequence) => {
    const tg = await target();
    try {
      await runSequence(tg, sequence);
    } finally {
      await tg.close();
    }
  });
  await fc.assert(property, { numRuns: runs, seed, ...(env.OCSP_HSM_PROPERTY_PATH ? { path: env.OCSP_HSM_PROPERTY_PATH } : {}) });
}

async function runSequence(target: Target, sequence: Step[]): Promise<void> {
  const { store, ca } = target;
  const model = new Map<string, ModelRecord>();
  const everFinal = new Set<string>();
  // The API checks revocation dates against its clock: every generated one is in its past.
  const clock = new FakeClock('2026-06-01T00:00:00Z');
  const publisher = new Publisher({ store, cas: new Map([[ca, []]]), clock, afterWrite: async () => undefined, warn: () => undefined });
  const run: Run = { ...target, publisher, crls: { number: 0 } };
  let before = await snapshot(run);
  for (const [i, step] of sequence.entries()) {
    const applied = modelWrites(step).map((w) => {
      const a = applyWrite(model.get(w.serial), w);
      if (a.after) model.set(w.serial, a.after);
      return a;
    });
    const at = `step ${i} (${step.by})`;
    const [reported, expected] = await perform(run, step, applied);
    const after = await snapshot(run);
    // What is stored first: a broken rule reads plainer there than in the counts it also breaks.
    checkStep(at, before, after, model, applied, everFinal);
    assert.deepEqual(reported, expected, `${at}: reported`);
    before = after;
  }
}

/** Makes the writer's call: what it reported, and what the model says it should have. */
async function perform(run: Run, step: Step, applied: Applied[]): Promise<[unknown, unknown]> {
  const { store, ca, publisher } = run;
  const a = applied[0]!;
  const want = { outcome: outcomeOf(a), record: a.after };
  if (step.by === 'cli revoke') {
    const r = await store.revoke(ca, step.serial, revokedOn(step.day), step.reason);
    return [{ outcome: r.outcome, created: r.created, record: view(r.record) }, { ...want, created: !a.before }];
  }
  if (step.by === 'api issued') {
    const notAfter = step.notAfter !== undefined ? { notAfter: expiresOn(step.notAfter).toISOString() } : {};
    const r = await publisher.issued(ca, parseIssuance({ serial: step.serial, ...notAfter, ...(step.profile ? { profile: step.profile } : {}) }));
    return [{ outcome: r.outcome, record: view(r.record) }, want];
  }
  if (step.by === 'api revoked') {
    const ev = publisher.parseRevocation({ serial: step.serial, revokedAt: revokedOn(step.day).toISOString(), reason: step.reason });
    const r = await publisher.revoked(ca, ev).catch((e: unknown) => (e instanceof PublishError ? e : Promise.reject(e)));
    // 404: no hold to release; 409: the model refuses the event and what stays stored has another reason.
    const refused = a.write.kind === 'release' && !a.before ? 404 : a.kept && a.after?.reason !== step.reason ? 409 : undefined;
    return [r instanceof PublishError ? { refused: r.status } : { outcome: r.outcome, record: view(r.record) }, refused ? { refused } : want];
  }
  return [await writeMany(run, step), counts(applied)];
}

async function writeMany(run: Run, step: Step): Promise<ImportResult> {
  const { store, ca } = run;
  if (step.by === 'import index') return store.putCertificates(parseOpensslIndex(indexText(step.lines), ca));
  if (step.by === 'crl') {
    // A delta CRL builds on a full one (RFC 5280 5.2.4): before the first full CRL, an empty one is applied.
    if (step.delta && run.crls.full === undefined) assert.deepEqual(await applyCrl(run, false, []), counts([]));
    return applyCrl(run, step.delta, step.entries);
  }
  return store.putCertificates(modelWrites(step).map((w) => statusWrite(ca, w)));
}

function statusWrite(ca: string, w: ModelWrite): StatusWrite {
  if (w.kind === 'release') return { ca, serial: w.serial, status: 'good', releaseOnly: true };
  const notAfter = w.notAfter !== undefined ? { notAfter: expiresOn(w.notAfter) } : {};
  if (w.kind === 'good') return { ca, serial: w.serial, status: 'good', ...notAfter, ...(w.profile ? { profile: w.profile } : {}) };
  return { ca, serial: w.serial, status: 'revoked', revokedAt: revokedOn(w.day), ...(w.reason ? { reason: w.reason } : {}), ...notAfter };
}

/** Numbers CRLs upwards, each an hour after the one before, as a CA issues them. */
async function applyCrl(run: Run, delta: boolean, entries: Extract<Step, { by: 'crl' }>['entries']): Promise<ImportResult> {
  const n = ++run.crls.number;
  const crl: Crl = {
    der: Buffer.alloc(0),
    thisUpdate: new Date(revokedOn(10).getTime() + n * 3_600_000),
    crlNumber: BigInt(n),
    isDelta: delta,
    ...(delta ? { baseCrlNumber: BigInt(run.crls.full!) } : {}),
    freshestCrlUrls: [],
    keepsExpired: false,
    entries: entries.map((e) => ({ serial: e.serial, revokedAt: revokedOn(e.day), ...(e.reason ? { reason: e.reason } : {}) })),
  };
  if (!delta) run.crls.full = n;
  return run.store.applyCrl(appliedCrl(run.ca, crl), crlRecords(run.ca, crl));
}

// index.txt as `openssl ca` writes it: UTCTime, the serial in upper-case hex of whole octets, six tab-separated fields.
function indexText(lines: IndexLine[]): string {
  const generalized = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  const utc = (d: Date) => generalized(d).slice(2);
  const extra = (l: IndexLine) => (l.reason === 'keyTime' ? `,${generalized(revokedOn(l.day))}` : l.reason === 'holdInstruction' ? ',holdInstructionReject' : '');
  const revocation = (l: IndexLine) => (l.flag === 'R' ? utc(revokedOn(l.day)) + (l.reason ? `,${l.reason}${extra(l)}` : '') : '');
  const line = (l: IndexLine) => [l.flag, utc(expiresOn(l.notAfter)), revocation(l), l.serial.padStart(2, '0').toUpperCase(), 'unknown', `/CN=${l.serial}`];
  return lines.map((l) => line(l).join('\t') + '\n').join('');
}

async function snapshot(run: Run): Promise<Snapshot> {
  return new Map((await run.store.listCertificates(run.ca, '', 100)).map((r) => [r.serial, r]));
}

function checkStep(at: string, before: Snapshot, after: Snapshot, model: Map<string, ModelRecord>, applied: Applied[], everFinal: Set<string>): void {
  for (const s of SERIALS) {
    const [was, now] = [view(before.get(s)), view(after.get(s))];
    // Apart from the model: a final revocation stays final, and only moves to keyCompromise at an earlier or the same date.
    if (everFinal.has(s)) {
      assert.ok(now && isFinal(now), `${at}: serial ${s} was finally revoked (${JSON.stringify(was)}), now ${JSON.stringify(now)}`);
      const moved = now.day! <= was!.day! && (now.reason === was!.reason || now.reason === 'keyCompromise');
      assert.ok(moved, `${at}: final ${JSON.stringify(was)} became ${JSON.stringify(now)}`);
    }
    if (now && isFinal(now)) everFinal.add(s);
    // Rule 1: a hold is released only by a good write or a removeFromCRL for that certificate.
    const released = was && isHold(was) && now?.status === 'good';
    if (released) assert.ok(applied.some((a) => a.write.serial === s && a.write.kind !== 'revoke'), `${at}: serial ${s} released by a revocation`);
    if (was) assert.ok(now, `${at}: serial ${s} disappeared`);
    assert.deepEqual(now, model.get(s), `${at}: serial ${s} as stored`);
  }
  // The counts against the store's diff: inserts are the records created, the certificates written those with a new version.
  const expected = counts(applied);
  const rewritten = SERIALS.filter((s) => after.has(s) && after.get(s)!.version !== before.get(s)?.version);
  const changed = SERIALS.filter((s) => !same(view(before.get(s)), view(after.get(s))));
  assert.equal(SERIALS.filter((s) => !before.has(s) && after.has(s)).length, expected.inserted, `${at}: records created`);
  assert.deepEqual(rewritten, SERIALS.filter((s) => applied.some((a) => a.write.serial === s && a.outcome !== 'unchanged')), `${at}: records written`);
  assert.ok(changed.every((s) => rewritten.includes(s)), `${at}: a record changed without a new version`);
  // With each certificate written once, every inserted or updated write is one changed record.
  const once = new Set(applied.map((a) => a.write.serial)).size === applied.length;
  if (once) assert.equal(changed.length, expected.inserted + expected.updated, `${at}: records changed`);
}
