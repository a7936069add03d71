// The revocation race (native-test/revocation-race-*.test.ts), issue 12 acceptance: a revocation never loses a race
// with signing. 50,000 certificates imported good through an index.txt; then at once the pre-signer (presign --all,
// run again until the writers are done), store-on-demand and live nonce traffic, and 5,036 revocations through all
// four writers (ocsp-hsm revoke, import index, import crl, the publishing API), each serial polled from its
// acknowledgement on. No write may fail, no
// answer after the acknowledgement (PostgreSQL: plus maxStaleness) may say good, and afterwards `ocsp-hsm check`
// against the final index.txt must find nothing. SQLite with one responder; PostgreSQL with two, whose LISTEN
// connections are killed during the run.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseDuration } from '../../src/config/units';
import type { CrlEntry } from '../../src/pki/crl';
import { childEnv, createTestPki, publishingPort, Responder, runCliAsync, startResponder, variantConfig } from './harness';
import { hsmCrlIssuer } from './hsm-crl';
import { pgCount, postgresCluster } from './postgres';
import { PollerHandle, PollerResult, startPoller } from './revocation-poller';
import {
  indexText, racePlan, RacePlan, Revocation, runWriters, statusSample, WriteRecord, Writer, WriterFile, writerFiles, WRITERS, WritersSchedule,
} from './revocation-race';

/** `store.maxStaleness` of the PostgreSQL responders: the bound their answers are held to. */
const STORE_MAX_STALENESS: string | undefined = '1s';
const STALENESS_BOUND_MS = parseDuration(STORE_MAX_STALENESS ?? '1s');

const CA = 'race';
const CERTIFICATES = 50_000;
// The CRL writer's last full CRL lists its 1,200: asn1js (10,000 nodes at most per parse) fails on CRLs of more
// than about 1,250 entries with reason codes, in issueCrl and in `ocsp-hsm import crl` alike.
const PER_WRITER: Record<Writer, number> = { revoke: 36, index: 2_100, crl: 1_200, api: 1_700 };
const INDEX_IMPORTS = 3;
const CRL_IMPORTS = 3;
// The pre-signer signs at most this many responses a second (tokens[].limits.rate, an HSM's ceiling): 50,000 take
// 25 s or more on any machine, and the writes, from 1.5 s to about 11 s after its start, land while it runs.
const PRESIGN_RATE = 2_000;
const WRITES_AFTER_MS = 1_500;
const SCHEDULE: WritersSchedule = {
  indexAtMs: [0, 3_500, 7_000], crlAtMs: [1_000, 4_500, 8_000], revokeLanes: 6, revokePauseMs: 300, apiSpreadMs: 9_000, apiConcurrency: 2,
};
/** PostgreSQL: when the responders' LISTEN connections are terminated, in ms from the writers' start. */
const LISTEN_KILLS_AT_MS = [2_000, 5_000, 8_000];
const TOKEN = 'c0ffee11'.repeat(8);

const pki = createTestPki([{ name: CA, caKey: 'ec-p256', responderKey: 'ec-p256' }]);
const ca = pki.cas[0]!;
writeFileSync(join(pki.dir, 'publish.token'), TOKEN + '\n', { mode: 0o600 });
// CRLs are signed with the CA key inside the token, as the CA would (one token per process: shared by both suites).
const crls = hsmCrlIssuer(pki);
after(() => crls.close());

interface Backend {
  name: string;
  responders: number;
  /** An answer to a request sent later than acknowledgement + this must not say good. */
  boundMs: number;
  /** Whether its responders' LISTEN connections are terminated during the run. */
  killsListeners: boolean;
  /** The store section of the config, and what the test reads from the store behind the daemon's back. */
  open(): Promise<BackendStore>;
}

interface BackendStore {
  config: Record<string, unknown>;
  count(sql: string): Promise<number>;
  /** Terminates the responders' LISTEN connections; how many. */
  killListeners?(): Promise<number>;
}

interface RaceRun {
  plan: RacePlan;
  writes: WriteRecord[];
  presign: { status: number | null; stderr: string; summary: string; runs: number; ms: number };
  /** Revocations acknowledged while a pre-signer run was going. */
  ackedWhilePresigning: number;
  poll: PollerResult;
  listenKills: number[];
  check: { status: number | null; findings: string[]; summary: string; ms: number };
  statusSample: { serial: string; expected: RegExp; got: string }[];
  revokedInStore: number;
  ms: number;
}

const sqlite: Backend = {
  name: 'SQLite',
  responders: 1,
  boundMs: 0,
  killsListeners: false,
  async open() {
    const file = join(pki.dir, 'data', 'race.sqlite');
    return {
      config: { type: 'sqlite', path: 'race.sqlite' },
      async count(sql) {
        const db = new Database(file, { readonly: true });
        try {
          return db.prepare(sql).pluck().get() as number;
        } finally {
          db.close();
        }
      },
    };
  },
};

const postgres: Backend = {
  name: 'PostgreSQL',
  responders: 2,
  boundMs: STALENESS_BOUND_MS,
  killsListeners: true,
  async open() {
    const pg = await postgresCluster();
    const url = pg.url(await pg.createDatabase());
    return {
      config: { url, ...(STORE_MAX_STALENESS ? { maxStaleness: STORE_MAX_STALENESS } : {}) },
      count: (sql) => pgCount(url, sql),
      killListeners: () =>
        pgCount(url, `SELECT count(*) AS n FROM (SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()) k WHERE killed`),
    };
  },
};

/** One backend per test file: each gets its own process and its own per-file timeout (the two took 4-10 minutes together). */
export function raceOn(which: 'sqlite' | 'postgres'): void {
  describeRace(which === 'sqlite' ? sqlite : postgres);
}

function describeRace(backend: Backend): void {
  describe(`revocations racing the pre-signer and on-demand signing, ${backend.name}`, () => {
    const responders: Responder[] = [];
    let run: RaceRun;

    before(async () => {
      run = await race(backend, responders);
    });
    after(async () => {
      // Every responder is stopped before any is judged: one that does not stop must not leave the others running.
      const codes = await Promise.all(responders.map((r) => r.stop()));
      for (const [i, r] of responders.entries()) {
        // OCSP_HSM_RACE_LOGS=DIR keeps each responder's log after the run (the temp dir goes with the process).
        writeFileSync(join(process.env.OCSP_HSM_RACE_LOGS ?? pki.dir, `race-${backend.name.toLowerCase()}-responder${i + 1}.log`), r.output());
      }
      for (const [i, r] of responders.entries()) assert.equal(codes[i], 0, `responder ${i + 1}: ${r.output().slice(-3000)}`);
    });

    it('every pre-signer run over every certificate succeeded', () => {
      assert.equal(run.presign.status, 0, `${run.presign.summary}\n${run.presign.stderr.trim().split('\n').slice(-5).join('\n')}`);
    });

    it('acknowledged every write on its first try', () => {
      const failed = run.writes.filter((w) => !w.ok);
      const byWriter = Object.fromEntries(WRITERS.map((w) => [w, failed.filter((f) => f.writer === w).length]));
      assert.deepEqual(
        failed.slice(0, 10).map((f) => `${f.what}: ${f.detail}`),
        [],
        `${failed.length} of ${run.writes.length} writes failed (by writer ${JSON.stringify(byWriter)}); the first ones are listed`,
      );
    });

    it('most revocations landed while the pre-signer ran (else this test proves little)', () => {
      assert.ok(run.ackedWhilePresigning >= 0.8 * run.poll.acknowledged, `${run.ackedWhilePresigning} of ${run.poll.acknowledged} acknowledged while a pre-signer run was going`);
    });

    it(`no answer to a request sent later than a revocation's acknowledgement${backend.boundMs ? ` + ${backend.boundMs} ms` : ''} says good`, () => {
      const p = run.poll;
      assert.equal(p.goodAfterBound, 0, `${p.goodAfterBound} answers (for ${p.goodAfterBoundSerials} serials) said good:\n${p.goodAfterBoundExamples.join('\n')}`);
    });

    it('every acknowledged revocation was asked about after it, and answered, by every responder', () => {
      const acked = new Set(run.writes.filter((w) => w.ok).flatMap((w) => w.serials)).size;
      assert.equal(run.poll.acknowledged, acked);
      assert.equal(run.poll.uncovered, 0, `never answered after the bound: ${run.poll.uncoveredExamples.join(', ')}`);
    });

    it('answers carry what was asked (and the nonce, when signed live) and their signatures verify', () => {
      assert.equal(run.poll.problems, 0, run.poll.problemExamples.join('\n'));
      assert.equal(run.poll.signatures.failed, 0);
      assert.ok(run.poll.signatures.verified >= 100, `${run.poll.signatures.verified} signatures verified`);
    });

    it('ocsp-hsm check against the final index.txt finds no stored response contradicting the store', () => {
      const saysGood = run.check.findings.filter(storedSaysGood);
      const first = [...saysGood, ...run.check.findings.filter((f) => !storedSaysGood(f))].slice(0, 10);
      assert.deepEqual(first, [], `${run.check.summary} (${saysGood.length} stored responses say good for a revoked certificate); the first findings are listed`);
      assert.equal(run.check.status, 0, run.check.summary);
    });

    it('ocsp-hsm status agrees with the final index.txt for a sample', () => {
      for (const s of run.statusSample) assert.match(s.got, s.expected, s.serial);
    });

    it('the store holds as many revoked certificates as distinct revocations were sent', () => {
      const sent = new Set(run.plan.revocations.map((r) => r.serial)).size;
      assert.equal(run.revokedInStore, sent, `${run.revokedInStore} certificates revoked in the store, ${sent} distinct revocations sent`);
    });

    if (backend.killsListeners) {
      it("the responders' LISTEN connections were terminated at least twice during the run", () => {
        assert.ok(run.listenKills.filter((n) => n >= backend.responders).length >= 2, `killed per round: ${run.listenKills.join(', ')}`);
      });
    }
  });
}

/** The store, configs and files of one suite, its responders started, the poller's traffic on them. */
interface Setup {
  name: string;
  plan: RacePlan;
  store: BackendStore;
  presignConfig: string;
  cli(args: string[], timeoutMs?: number): Promise<{ status: number | null; stdout: string; stderr: string }>;
  indexFiles: WriterFile[];
  crlFiles: WriterFile[];
  finalIndex: string;
  apiBases: string[];
  poller: PollerHandle;
}

async function race(backend: Backend, responders: Responder[]): Promise<RaceRun> {
  const started = Date.now();
  const s = await setUp(backend, responders);
  try {
    const during = await concurrently(s);
    const afterwards = await checkAfterwards(s);
    const run: RaceRun = { plan: s.plan, ...during, ...afterwards, ms: Date.now() - started };
    console.log(JSON.stringify(figures(backend, run)));
    return run;
  } finally {
    s.poller.kill();
  }
}

async function setUp(backend: Backend, responders: Responder[]): Promise<Setup> {
  const plan = racePlan(CERTIFICATES, PER_WRITER);
  const store = await backend.open();
  const name = `race-${backend.name.toLowerCase()}`;
  const edit = (c: Record<string, any>) => {
    c.store = store.config;
    c.defaults = { ...c.defaults, validity: '1h', preProduction: { enabled: true, storeOnDemand: true, onRevocation: true, hashes: ['sha1'] } };
    c.publishing = { host: '127.0.0.1', port: 0, auth: { tokenFile: 'publish.token' } };
  };
  const config = variantConfig(pki, name, edit);
  const presignConfig = variantConfig(pki, `${name}-presign`, (c) => {
    edit(c);
    c.tokens[0].limits = { ...c.tokens[0].limits, rate: PRESIGN_RATE };
  });
  const cli = (args: string[], timeoutMs = 120_000) => runCliAsync([...args, '--config', config], childEnv(pki), timeoutMs);
  const file = (f: string, text: string) => (writeFileSync(join(pki.dir, f), text), join(pki.dir, f));
  const initial = await cli(['import', 'index', '--ca', CA, file(`${name}-index0.txt`, indexText(plan, []))]);
  assert.equal(initial.status, 0, initial.stderr);
  const signCrl = (f: string, n: bigint, entries: CrlEntry[]) => crls.write(f, { ca, number: n, entries });
  const { indexFiles, crlFiles } = await writerFiles(plan, pki.dir, name, { index: INDEX_IMPORTS, crl: CRL_IMPORTS }, signCrl);
  const finalIndex = file(`${name}-final-index.txt`, indexText(plan, plan.revocations));
  for (let i = 0; i < backend.responders; i++) responders.push(await startResponder(pki, { config }));
  const poller = startPoller({
    urls: responders.map((r) => r.url), caCertFile: ca.caCertFile, responderCertFile: ca.responderCertFile!, serials: plan.serials,
    revoking: plan.revocations.map((r) => r.serial), boundMs: backend.boundMs,
    // SQLite: at once, then twice more; PostgreSQL: twice after the bound (earlier answers prove nothing there).
    pollDelaysMs: backend.boundMs ? [backend.boundMs + 250, backend.boundMs + 1_500] : [0, 250, 1_500],
    pollConcurrency: 4, onDemandConcurrency: 3, liveConcurrency: 2, maxRunMs: 300_000, verifyEvery: 25,
  });
  const apiBases = responders.map((r) => `http://127.0.0.1:${publishingPort(r)}`);
  return { name, plan, store, presignConfig, cli, indexFiles, crlFiles, finalIndex, apiBases, poller };
}

/** How many pre-signer runs at most: each takes 25 s or more (PRESIGN_RATE), the writers far less on a quiet machine. */
const MAX_PRESIGN_RUNS = 4;

/**
 * The pre-signer, then the writers (and on PostgreSQL the LISTEN kills), all with the poller's traffic going on. The
 * pre-signer is run again (presign --all) while the writers are still going, so the revocations land while it signs
 * however slow the writes are on the machine: a clean-clone run on a machine where the writes took longer than one
 * pre-signer run had only 2,423 of 5,036 acknowledged while it ran.
 */
async function concurrently(s: Setup): Promise<Pick<RaceRun, 'writes' | 'presign' | 'ackedWhilePresigning' | 'poll' | 'listenKills'>> {
  const started = Date.now();
  const runs: PresignRun[] = [];
  let writersDone = false;
  const presigning = (async () => {
    do {
      const t0 = Date.now();
      const r = await runCliAsync(['presign', '--all', '--ca', CA, '--config', s.presignConfig], childEnv(pki), 300_000);
      runs.push({ ...r, startedAt: t0, endedAt: Date.now() });
      if (r.status !== 0) return;
    } while (!writersDone && runs.length < MAX_PRESIGN_RUNS);
  })();
  await new Promise((r) => setTimeout(r, WRITES_AFTER_MS));
  const kills = s.store.killListeners ? killListenersOnSchedule(s.store.killListeners) : Promise.resolve([]);
  const writes = await runWriters(CA, {
    plan: s.plan, indexFiles: s.indexFiles, crlFiles: s.crlFiles, schedule: SCHEDULE,
    cli: (args) => s.cli(args),
    publish: (r, i) => publishRevocation(s.apiBases[i % s.apiBases.length]!, r),
    pending: (serials) => s.poller.pending(serials),
    ack: (serials, at) => s.poller.ack(serials, at),
  }).finally(() => {
    writersDone = true;
  });
  const listenKills = await kills;
  // The traffic stops with the writes' polls; the final sweep, once the pre-signer is done, asks what is served then.
  await s.poller.quiesce();
  await presigning;
  writeFileSync(join(pki.dir, `${s.name}-presign.log`), runs.map((r) => r.stdout + r.stderr).join('\n'));
  const failed = runs.find((r) => r.status !== 0);
  const presigningAt = (t: number) => runs.some((r) => r.startedAt <= t && t < r.endedAt);
  return {
    writes, listenKills,
    presign: {
      status: failed?.status ?? 0, stderr: (failed ?? runs.at(-1)!).stderr, runs: runs.length, ms: Date.now() - started,
      summary: runs.map((r, i) => `run ${i + 1} (${((r.endedAt - r.startedAt) / 1000).toFixed(1)} s): ${r.stdout.trim()}`).join('\n'),
    },
    ackedWhilePresigning: new Set(writes.filter((w) => w.ok && presigningAt(w.endedAt)).flatMap((w) => w.serials)).size,
    poll: await s.poller.finish(),
  };
}

interface PresignRun {
  status: number | null;
  stdout: string;
  stderr: string;
  startedAt: number;
  endedAt: number;
}

/** Once the responders are quiet: check against the final index.txt, status of a sample, the revoked count. */
async function checkAfterwards(s: Setup): Promise<Pick<RaceRun, 'check' | 'statusSample' | 'revokedInStore'>> {
  await settled(s.store);
  const t0 = Date.now();
  const checked = await s.cli(['check', '--ca', CA, '--against', s.finalIndex], 600_000);
  const ms = Date.now() - t0;
  // The whole report stays next to the store (OCSP_HSM_KEEP_TEST_DIRS=1 keeps it).
  writeFileSync(join(pki.dir, `${s.name}-check.txt`), checked.stdout + checked.stderr);
  const lines = checked.stdout.trim().split('\n');
  const sample: RaceRun['statusSample'] = [];
  for (const x of statusSample(s.plan, CA)) {
    const r = await s.cli(['status', '--ca', CA, '--serial', x.serial]);
    sample.push({ ...x, got: (r.stdout + r.stderr).trim() });
  }
  return {
    check: { status: checked.status, findings: lines.slice(0, -1), summary: lines.at(-1) || checked.stderr, ms },
    statusSample: sample,
    revokedInStore: await s.store.count(`SELECT count(*) AS n FROM certificates WHERE ca = '${CA}' AND status = 'revoked'`),
  };
}

/** A check finding of a stored response saying good for a certificate the store has revoked. */
function storedSaysGood(finding: string): boolean {
  return /^bad-response \S+ \S+ \S+ says good, the store says revoked/.test(finding);
}

async function publishRevocation(base: string, r: Revocation): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}/v1/cas/${CA}/revocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ serial: r.serial, revokedAt: r.revokedAt.toISOString(), reason: r.reason }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: await res.text() };
}

async function killListenersOnSchedule(kill: () => Promise<number>): Promise<number[]> {
  const start = Date.now();
  const killed: number[] = [];
  for (const at of LISTEN_KILLS_AT_MS) {
    await new Promise((r) => setTimeout(r, Math.max(0, start + at - Date.now())));
    killed.push(await kill());
  }
  return killed;
}

/** Waits (at most 30 s) until the responders stop storing responses (production upon revocation), so check sees a quiet store. */
async function settled(store: BackendStore): Promise<void> {
  let last = -1;
  for (let i = 0; i < 60; i++) {
    const n = await store.count('SELECT count(*) AS n FROM responses');
    if (n === last) return;
    last = n;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function figures(backend: Backend, run: RaceRun): Record<string, unknown> {
  const sent = Object.fromEntries(WRITERS.map((w) => [w, run.plan.revocations.filter((r) => r.writer === w).length]));
  const failed = Object.fromEntries(WRITERS.map((w) => [w, run.writes.filter((x) => x.writer === w && !x.ok).length]));
  const writeCalls = Object.fromEntries(WRITERS.map((w) => [w, run.writes.filter((x) => x.writer === w).length]));
  return {
    suite: `revocation race, ${backend.name}`,
    certificates: run.plan.serials.length,
    revocations: { ...sent, total: run.plan.revocations.length },
    writes: writeCalls,
    // How long each writer's writes took, and when its last one ended (ms after the first write began).
    writeMs: Object.fromEntries(WRITERS.map((w) => {
      const ms = run.writes.filter((x) => x.writer === w).map((x) => x.ms).sort((a, b) => a - b);
      const began = Math.min(...run.writes.map((x) => x.endedAt - x.ms));
      const last = Math.max(...run.writes.filter((x) => x.writer === w).map((x) => x.endedAt));
      return [w, { p50: ms[Math.floor(ms.length / 2)], max: ms.at(-1), lastEndedAfter: last - began }];
    })),
    writesFailed: failed,
    firstFailure: run.writes.find((w) => !w.ok)?.detail,
    revokedInStore: run.revokedInStore,
    presign: { ms: run.presign.ms, runs: run.presign.runs, status: run.presign.status, result: run.presign.summary },
    suiteMs: run.ms,
    ackedWhilePresigning: run.ackedWhilePresigning,
    requests: run.poll.requests,
    polled: run.poll.polled,
    byOcspStatus: run.poll.byOcspStatus,
    transportErrors: run.poll.transportErrors,
    goodAfterAck: run.poll.goodAfterBound,
    goodAfterAckSerials: run.poll.goodAfterBoundSerials,
    boundMs: backend.boundMs,
    goodWithinBound: run.poll.goodWithinBound,
    signatures: run.poll.signatures,
    check: { status: run.check.status, ms: run.check.ms, saysGood: run.check.findings.filter(storedSaysGood).length, findings: run.check.findings.length, summary: run.check.summary },
    ...(backend.killsListeners ? { listenKills: run.listenKills, maxStaleness: STORE_MAX_STALENESS ?? null } : {}),
  };
}
