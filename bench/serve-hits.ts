// Benchmark: serving pre-produced responses without signing, over 10,000 distinct certificates, as a
// ratio of a bare node:http server answering every request with one fixed DER response (fixed-der-server.ts),
// measured in the same run:
//   hot cache  the daemon with the memory cache on, every response already cached (GET and POST);
//   store hit  the daemon with the cache off, every response read from the store: SQLite and PostgreSQL; beside it
//              the floor server (store-hit-floor-server.ts) on the same store, the least a server on the daemon's
//              parts does per store hit: what any daemon could reach.
// Every answer wrk counts as ok is HTTP 200 and a successful OCSPResponse (wrk-requests.lua); more than 0.1 %
// failed answers fails the benchmark. Sanity checks: every one of the 10,000 responses is verified once (status
// successful, good, the serial asked for, signature checked by openssl on a sample), GET answers are the same
// bytes as POST answers, no signature is made while measuring (ocsp_hsm_signatures_total), and the hot-cache
// daemon's store has no responses left while it is measured (deleted after warming), so every answer it gives
// comes from its memory cache. Each daemon is measured alone beside the bare server (the others stopped, PostgreSQL
// not yet started), so no idle daemon or database shares the two cores with the one being measured.
// usage: npm run bench -- serve-hits [--runs N] [--seconds S] [--certs N] [--threads T] [--connections C] [--no-postgres]
//        [--only hot|sqlite|postgres[,...]] (those phases alone; results in serve-hits-only-NAMES.json)
//        [--trace-gc FILE] (each daemon, by trace-gc-hook.ts, and the bare server run with --trace-gc; their GC lines go to FILE)
//        [--gc-nvp] (with --trace-gc: V8's --trace-gc-nvp lines instead, and a summary per server of the bytes each
//        scavenge promoted to the old generation and of the mark-compacts)
//        [--cpu-prof-dir DIR] (V8 CPU profiles of each daemon measured, by cpu-prof-hook.ts, and of the bare server)
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import * as pkijs from 'pkijs';
import { parse } from 'yaml';
import { childEnv, CLI, createTestPki, ROOT, Responder, runCli, startResponder, TestPki, variantConfig } from '../native-test/support/harness';
import { postgresCluster } from '../native-test/support/postgres';
import { encodeCertId } from '../src/ocsp/cert-id';
import { parseOcspRequest } from '../src/ocsp/request';
import { serialFromIntegerBytes } from '../src/ocsp/serial';
import { TAG, tlv } from '../src/ocsp/tlv';
import { issuerHashes, readCertificate } from '../src/pki/certificate';
import { machine, median } from './machine';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' }, seconds: { type: 'string' }, certs: { type: 'string' }, threads: { type: 'string' },
    connections: { type: 'string' }, 'no-postgres': { type: 'boolean' }, 'cpu-prof-dir': { type: 'string' }, only: { type: 'string' }, 'trace-gc': { type: 'string' },
    'gc-nvp': { type: 'boolean' },
  },
});
const RUNS = Number(values.runs ?? 5);
const SECONDS = Number(values.seconds ?? 5);
const CERTS = Number(values.certs ?? 10_000);
const THREADS = Number(values.threads ?? 2);
const CONNECTIONS = Number(values.connections ?? 64);
/** The phases to run (--only hot,sqlite,postgres), each by its short name; all of them by default. */
const ONLY = values.only?.split(',').map((p) => p.trim());
const PHASE_NAMES = { hot: 'hotCache', sqlite: 'storeSqlite', postgres: 'storePostgres' } as const;
for (const p of ONLY ?? []) if (!(p in PHASE_NAMES)) throw new Error(`--only: unknown phase ${p} (hot, sqlite, postgres)`);
const runPhase = (key: string) => !ONLY || ONLY.some((p) => PHASE_NAMES[p as keyof typeof PHASE_NAMES] === key);
const POSTGRES = !values['no-postgres'] && runPhase('storePostgres');
/** Writes V8 CPU profiles of each daemon and the bare server (whole run) into this directory. */
const CPU_PROF_DIR = values['cpu-prof-dir'];
/** Runs each daemon and the bare server with --trace-gc, and writes what they print to this file. */
const TRACE_GC_FILE = values['trace-gc'];
/** V8's flag for those lines: name=value pairs (promoted=, new_space_survived=) with --gc-nvp. */
const TRACE_GC_FLAG = values['gc-nvp'] ? '--trace-gc-nvp' : '--trace-gc';
if (values['gc-nvp'] && !TRACE_GC_FILE) throw new Error('--gc-nvp: give --trace-gc FILE too');
/** Largest share of failed answers tolerated in a measurement. */
const MAX_FAILED = 0.001;
/** The ratio to the bare server each daemon should reach, GET and POST (issue 14: hot path; issue 15: store hits). */
const TARGET_RATIOS = { hotCache: 0.8, storeSqlite: 0.6, storePostgres: 0.4 } as const;
/** Responses per daemon decoded by pkijs and asked again by GET. */
const SAMPLE = 200;

type Method = 'GET' | 'POST';
interface WrkResult { okPerSecond: number; serverCpuUsPerOk?: number; serverSysUsPerOk?: number; serverCores?: number; wrkCores?: number; ok: number; failed: number; non200: number; ocspError: number; short: number; socketErrors: number; requests: number; p50ms: number; p99ms: number }

// --- requests -------------------------------------------------------------------------------------------------

/** OCSPRequest { tbsRequest { requestList { Request { reqCert } } } }: one SHA-1 CertID, no nonce, no extensions. */
function ocspRequest(certIdDer: Buffer): Buffer {
  return tlv(TAG.sequence, tlv(TAG.sequence, tlv(TAG.sequence, tlv(TAG.sequence, certIdDer))));
}

const getPath = (der: Buffer) => '/' + encodeURIComponent(der.toString('base64'));

// --- HTTP client for warming and checking (keep-alive, bounded concurrency) -------------------------------------

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

function fetchDer(url: string, method: Method, der: Buffer): Promise<{ status: number; body: Buffer }> {
  const u = new URL(url);
  const path = method === 'GET' ? getPath(der) : '/';
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method, agent, timeout: 10_000, headers: method === 'POST' ? { 'Content-Type': 'application/ocsp-request', 'Content-Length': der.length } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(method === 'POST' ? der : undefined);
  });
}

async function forEachConcurrent<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

/**
 * Every answer, by bytes: a successful OCSPResponse holding the CertID exactly as asked (so the serial asked for)
 * followed by certStatus good ([0] IMPLICIT NULL: 80 00). Throws otherwise.
 */
function quickCheck(der: Buffer, certIdDer: Buffer, serial: string): void {
  const o = der[1]! < 0x80 ? 2 : 2 + (der[1]! & 0x7f);
  if (der[0] !== 0x30 || der[o] !== 0x0a || der[o + 1] !== 0x01 || der[o + 2] !== 0x00) throw new Error(`serial ${serial}: not a successful OCSPResponse`);
  if (!der.includes(Buffer.concat([certIdDer, Buffer.from([0x80, 0x00])]))) throw new Error(`serial ${serial}: the response does not say good for the CertID asked`);
}

/** A sample, decoded by pkijs: one SingleResponse saying good for `serial`; throws otherwise. */
function checkResponse(der: Buffer, serial: string): void {
  const r = pkijs.OCSPResponse.fromBER(der);
  const status = r.responseStatus.valueBlock.valueDec;
  if (status !== 0 || !r.responseBytes) throw new Error(`serial ${serial}: OCSP response status ${status}`);
  const basic = pkijs.BasicOCSPResponse.fromBER(r.responseBytes.response.valueBlock.valueHexView);
  const singles = basic.tbsResponseData.responses;
  if (singles.length !== 1) throw new Error(`serial ${serial}: ${singles.length} SingleResponses`);
  const got = serialFromIntegerBytes(singles[0]!.certID.serialNumber.valueBlock.valueHexView);
  if (got !== serial) throw new Error(`asked for serial ${serial}, answered for ${got}`);
  const certStatus = singles[0]!.certStatus as { idBlock: { tagClass: number; tagNumber: number } };
  if (certStatus.idBlock.tagClass !== 3 || certStatus.idBlock.tagNumber !== 0) throw new Error(`serial ${serial}: status is not good`);
}

/** openssl verifies the response's signature against the CA (never -noverify) and reads its status. */
function opensslVerify(der: Buffer, caFile: string, serial: string, dir: string): void {
  const f = join(dir, `resp-${serial}.der`);
  writeFileSync(f, der);
  const r = spawnSync('openssl', ['ocsp', '-respin', f, '-CAfile', caFile, '-issuer', caFile, '-serial', '0x' + serial], { encoding: 'utf8', timeout: 30_000 });
  const out = `${r.stdout}${r.stderr}`;
  if (!/Response verify OK/.test(out) || !new RegExp(`0x${serial}: good`, 'i').test(out)) throw new Error(`openssl does not verify the response for ${serial}:\n${out}`);
}

/**
 * Asks for every certificate once by POST (for the hot cache: fills it), checks every answer, checks a sample of
 * GET answers are the same bytes; returns the POST answers.
 */
async function warmAndCheck(name: string, url: string, ders: Buffer[], certIds: Buffer[], serials: string[], caFile: string, dir: string): Promise<Buffer[]> {
  const answers: Buffer[] = new Array(ders.length);
  const t0 = Date.now();
  await forEachConcurrent(ders, 16, async (der, i) => {
    const r = await fetchDer(url, 'POST', der);
    if (r.status !== 200) throw new Error(`${name}: HTTP ${r.status} for serial ${serials[i]}`);
    quickCheck(r.body, certIds[i]!, serials[i]!);
    answers[i] = r.body;
  });
  const sample = Array.from({ length: Math.min(SAMPLE, ders.length) }, (_, k) => Math.floor((k * ders.length) / Math.min(SAMPLE, ders.length)));
  await forEachConcurrent(sample, 8, async (i) => {
    checkResponse(answers[i]!, serials[i]!);
    const r = await fetchDer(url, 'GET', ders[i]!);
    if (r.status !== 200 || !r.body.equals(answers[i]!)) throw new Error(`${name}: GET answer for serial ${serials[i]} differs from the POST answer`);
  });
  for (const i of [0, ders.length - 1]) opensslVerify(answers[i]!, caFile, serials[i]!, dir);
  console.error(`${name}: ${ders.length} responses checked (successful, good for the CertID asked; ${sample.length} decoded by pkijs and GET = POST; openssl verifies 2) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return answers;
}

// --- metrics -------------------------------------------------------------------------------------------------

/** /metrics on a connection of its own (a pooled one may just have been closed by the server's keep-alive timeout). */
function metricsText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url + '/metrics', { agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${url}/metrics: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function signatures(url: string): Promise<number> {
  const text = await metricsText(url);
  return text.split('\n').filter((l) => l.startsWith('ocsp_hsm_signatures_total{')).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function answered(url: string, method: Method): Promise<{ successful: number; other: number }> {
  const text = await metricsText(url);
  let successful = 0;
  let other = 0;
  for (const l of text.split('\n')) {
    if (!l.startsWith('ocsp_requests_total{') || !l.includes(`method="${method}"`)) continue;
    const n = Number(l.slice(l.lastIndexOf(' ') + 1));
    if (l.includes('status="successful"')) successful += n;
    else other += n;
  }
  return { successful, other };
}

// --- CPU time -------------------------------------------------------------------------------------------------

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds (user, system) a process has used; with `children`, those of its waited-for children instead. */
function cpuTimes(pid: number | 'self', children = false): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  const [u, s] = children ? [f[13], f[14]] : [f[11], f[12]]; // cutime/cstime are fields 16/17, utime/stime 14/15
  return { user: Number(u) / CLK_TCK, sys: Number(s) / CLK_TCK };
}

// --- wrk -----------------------------------------------------------------------------------------------------

/** wrk against `url`; with `serverPid`, also the server's CPU per answer and the cores it and wrk kept busy. */
function wrk(url: string, method: Method, file: string, seconds: number, serverPid?: number): WrkResult {
  const server0 = serverPid ? cpuTimes(serverPid) : undefined;
  const wrk0 = cpuTimes('self', true);
  const out = execFileSync('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', join(ROOT, 'bench/wrk-requests.lua'), url], {
    encoding: 'utf8', timeout: (seconds + 60) * 1000,
    env: { ...process.env, OCSP_BENCH_FILE: file, OCSP_BENCH_METHOD: method, OCSP_BENCH_THREADS: String(THREADS) },
  });
  const m = /RESULT (\{.*\})/.exec(out);
  if (!m) throw new Error(`wrk printed no RESULT:\n${out}`);
  const r = JSON.parse(m[1]!) as Omit<WrkResult, 'okPerSecond'> & { seconds: number; requestsInList: number };
  if (r.requestsInList !== CERTS) throw new Error(`wrk read ${r.requestsInList} requests from ${file}, expected ${CERTS}`);
  let cpu = {};
  if (serverPid && server0) {
    const s1 = cpuTimes(serverPid);
    const w1 = cpuTimes('self', true);
    const [user, sys] = [s1.user - server0.user, s1.sys - server0.sys];
    cpu = {
      serverCpuUsPerOk: ((user + sys) * 1e6) / r.ok, serverSysUsPerOk: (sys * 1e6) / r.ok, serverCores: (user + sys) / r.seconds,
      wrkCores: (w1.user - wrk0.user + w1.sys - wrk0.sys) / r.seconds,
    };
  }
  return { ...r, okPerSecond: r.ok / r.seconds, ...cpu };
}

/** Throws when more than MAX_FAILED of the answers failed (or none succeeded). */
function checkFailures(label: string, r: WrkResult): void {
  const total = r.ok + r.failed;
  if (r.ok === 0 || r.failed / total > MAX_FAILED) {
    throw new Error(`${label}: ${r.failed} of ${total} answers failed (non-200 ${r.non200}, OCSP error status ${r.ocspError}, short ${r.short}, socket errors ${r.socketErrors}); more than ${MAX_FAILED * 100} %`);
  }
  if (r.failed > 0) console.error(`${label}: warning: ${r.failed} of ${total} answers failed (non-200 ${r.non200}, OCSP error ${r.ocspError}, short ${r.short}, socket ${r.socketErrors})`);
}

// --- set-up ----------------------------------------------------------------------------------------------------

function presign(pki: TestPki, config: string, label: string, all: boolean): void {
  const r = spawnSync(process.execPath, [CLI, 'presign', ...(all ? ['--all'] : []), '--config', config], { encoding: 'utf8', env: childEnv(pki), timeout: 600_000 });
  if (r.status !== 0) throw new Error(`presign (${label}) failed: ${r.stderr}`);
  const m = /presign: (\d+) responses stored.* in ([\d.]+) s/.exec(r.stdout);
  if (!m || Number(m[1]) < CERTS) throw new Error(`presign (${label}) stored ${m?.[1]} responses, expected ${CERTS}:\n${r.stdout}`);
  console.error(`${label}: presigned ${m[1]} responses in ${m[2]} s`);
}

/**
 * A reference server of this directory (fixed-der-server.js, store-hit-floor-server.js), profiled as asked: resolves
 * once it prints {"port":N} (--trace-gc lines may come first, and go to TRACE_GC_FILE as `label: ...`). One that
 * exits or stays silent before listening fails the bench and is not left running.
 */
async function startReferenceServer(script: string, args: string[], label: string): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [
    ...(CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`] : []), ...(TRACE_GC_FILE ? [TRACE_GC_FLAG] : []), join(__dirname, script), ...args,
  ], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let seen = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${script}: no port within 30 s`)), 30_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      proc.kill();
      reject(e);
    };
    proc.once('exit', (code) => fail(new Error(`${script} exited (${code}) before listening`)));
    proc.stdout!.on('data', function onData(chunk: Buffer) {
      seen += chunk.toString();
      const m = /^\{"port":(\d+)\}$/m.exec(seen);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      proc.removeAllListeners('exit');
      resolve(Number(m[1]));
    });
  });
  if (TRACE_GC_FILE) {
    appendFileSync(TRACE_GC_FILE, seen.split('\n').filter((l) => l.startsWith('[')).map((l) => `${label}: ${l}\n`).join(''));
    proc.stdout!.on('data', (d: Buffer) => appendFileSync(TRACE_GC_FILE, `${label}: ${d.toString().trimEnd().replace(/\n/g, `\n${label}: `)}\n`));
  }
  return { url: `http://127.0.0.1:${port}`, proc };
}

/** The floor server answers every certificate with the daemon's bytes (POST), and GET as POST on a sample. */
async function checkFloor(url: string, ders: Buffer[], answers: Buffer[]): Promise<void> {
  await forEachConcurrent(ders, 16, async (der, i) => {
    const r = await fetchDer(url, 'POST', der);
    if (r.status !== 200 || !r.body.equals(answers[i]!)) throw new Error(`floor server: POST answer ${i} differs from the daemon's`);
    if (i % 50 === 0) {
      const g = await fetchDer(url, 'GET', der);
      if (g.status !== 200 || !g.body.equals(answers[i]!)) throw new Error(`floor server: GET answer ${i} differs from the daemon's`);
    }
  });
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill();
  await exited;
}

interface Target { key: string; label: string; url: string; method: Method; pid: number; daemon?: Responder; floor?: boolean }

interface Phase {
  key: 'hotCache' | 'storeSqlite' | 'storePostgres';
  label: string;
  /**
   * Starts the daemon and fills what it serves from; returns it warmed and checked, and for a store hit the store
   * arguments of the floor server (store-hit-floor-server.ts) reading the same store.
   */
  start(): Promise<{ daemon: Responder; answers: Buffer[]; after?: () => void; floorStore?: string[] }>;
}

async function main(): Promise<void> {
  if (TRACE_GC_FILE) writeFileSync(TRACE_GC_FILE, ''); // this run's lines only
  const pki = createTestPki([{ name: 'bench', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  const ca = pki.cas[0]!;
  process.env.SOFTHSM2_CONF = pki.softhsmConf;
  const serials = Array.from({ length: CERTS }, (_, i) => (0x1000000 + i).toString(16));
  const { nameHash, keyHash } = issuerHashes(readCertificate(ca.caCertFile), 'sha1');
  const certIds = serials.map((s) => encodeCertId('sha1', nameHash, keyHash, s));
  const ders = certIds.map(ocspRequest);
  // Our framing cross-checked: the daemon's parser and pkijs read back the serial.
  for (const i of [0, CERTS - 1]) {
    const parsed = parseOcspRequest(ders[i]!, { maxCertIds: 1 });
    const p = pkijs.OCSPRequest.fromBER(ders[i]!);
    const pSerial = serialFromIntegerBytes(p.tbsRequest.requestList[0]!.reqCert.serialNumber.valueBlock.valueHexView);
    if (parsed.certIds[0]!.serial !== serials[i] || pSerial !== serials[i] || parsed.nonce) throw new Error('request encoding is wrong');
  }
  const postFile = join(pki.dir, 'requests.hex');
  const getFile = join(pki.dir, 'requests.paths');
  writeFileSync(postFile, ders.map((d) => d.toString('hex')).join('\n') + '\n');
  writeFileSync(getFile, ders.map(getPath).join('\n') + '\n');
  const fileOf = (m: Method) => (m === 'GET' ? getFile : postFile);

  const base = (c: Record<string, any>) => {
    c.tokens[0].sessions = 4;
    c.defaults = { ...c.defaults, validity: '1d', preProduction: { enabled: true, hashes: ['sha1'] } };
    c.preSigner = { concurrency: 64, batchSize: 1000 };
  };
  const dataDir = (parse(readFileSync(pki.configFile, 'utf8')) as { dataDir?: string }).dataDir ?? 'data';

  // SQLite: the certificates, then their responses (presign), then a copy of that store for the hot-cache daemon.
  const sqliteFile = join(pki.dir, dataDir, 'ocsp-hsm.sqlite');
  const hotFile = join(pki.dir, 'hot-cache.sqlite');
  {
    const db = new Database(sqliteFile);
    const insert = db.prepare("INSERT INTO certificates (ca, serial, status, updated_at) VALUES (?, ?, 'good', 0)");
    db.transaction(() => serials.forEach((s) => insert.run(ca.name, s)))();
    db.close();
  }
  const sqliteConfig = variantConfig(pki, 'store-sqlite', (c) => {
    base(c);
    c.cache = { maxSize: 0 };
  });
  presign(pki, sqliteConfig, 'SQLite', true);
  {
    const db = new Database(sqliteFile);
    db.exec(`VACUUM INTO '${hotFile.replace(/'/g, "''")}'`);
    db.close();
  }
  const hotConfig = variantConfig(pki, 'hot-cache', (c) => {
    base(c);
    c.store = { path: hotFile };
  });
  let hotStored = -1;

  /** A daemon on `config`, with the V8 CPU profile (cpu-prof-hook.ts) and GC trace asked for on the command line. */
  const startProfiled = async (config: string): Promise<Responder> => {
    const nodeOptions = [
      process.env.NODE_OPTIONS ?? '', CPU_PROF_DIR ? `--require ${join(__dirname, 'cpu-prof-hook.js')}` : '', TRACE_GC_FILE ? `--require ${join(__dirname, 'trace-gc-hook.js')}` : '',
    ].filter((o) => o).join(' ');
    const daemon = await startResponder(pki, {
      config,
      env: { NODE_OPTIONS: nodeOptions, OCSP_BENCH_TRACE_GC_FLAG: TRACE_GC_FLAG, ...(CPU_PROF_DIR ? { OCSP_BENCH_CPU_PROF_DIR: CPU_PROF_DIR } : {}) },
    });
    if (TRACE_GC_FILE) {
      const stop = daemon.stop;
      daemon.stop = async () => {
        const code = await stop();
        appendFileSync(TRACE_GC_FILE, daemon.output().split('\n').filter((l) => /^\[\d+:/.test(l)).map((l) => `daemon: ${l}\n`).join(''));
        return code;
      };
    }
    return daemon;
  };

  const allPhases: Phase[] = [
    {
      key: 'hotCache',
      label: 'daemon hot cache',
      async start() {
        const daemon = await startProfiled(hotConfig);
        const answers = await warmAndCheck('hot cache (warming)', daemon.url, ders, certIds, serials, ca.caCertFile, pki.dir);
        // The store loses every response: from now on an answer can only come from memory (a miss would be
        // signed live, which the signature counter shows). No change-log entry, so no invalidation.
        const db = new Database(hotFile);
        const deleted = db.prepare('DELETE FROM responses').run().changes;
        db.close();
        if (deleted < CERTS) throw new Error(`deleted only ${deleted} stored responses from the hot-cache store`);
        const again = await fetchDer(daemon.url, 'POST', ders[1]!);
        if (!again.body.equals(answers[1]!)) throw new Error('hot cache: answer changed after the store was emptied');
        return {
          daemon,
          answers,
          // Every successful answer came from memory: the store is still empty and nothing was signed.
          after: () => {
            const check = new Database(hotFile, { readonly: true });
            hotStored = check.prepare('SELECT count(*) FROM responses').pluck().get() as number;
            check.close();
            if (hotStored !== 0) throw new Error(`hot-cache store holds ${hotStored} responses again: something missed the cache`);
          },
        };
      },
    },
    {
      key: 'storeSqlite',
      label: 'daemon store hit (cache off), SQLite',
      async start() {
        const daemon = await startProfiled(sqliteConfig);
        return { daemon, answers: await warmAndCheck('store hit, SQLite', daemon.url, ders, certIds, serials, ca.caCertFile, pki.dir), floorStore: ['--sqlite', sqliteFile] };
      },
    },
    ...(POSTGRES
      ? [
          {
            key: 'storePostgres',
            label: 'daemon store hit (cache off), PostgreSQL',
            // The cluster starts only now, so the phases before run without it.
            async start() {
              const pg = await postgresCluster();
              const url = pg.url(await pg.createDatabase());
              const pgConfig = variantConfig(pki, 'store-postgres', (c) => {
                base(c);
                c.store = { url };
                c.cache = { maxSize: 0 };
              });
              const imp = runCli(['import', 'certs', '--ca', ca.name, ca.good.file, '--config', pgConfig], childEnv(pki));
              if (imp.status !== 0) throw new Error(`import into PostgreSQL failed: ${imp.stderr}`);
              const client = new Client({ connectionString: url });
              await client.connect();
              await client.query(
                "INSERT INTO certificates (ca, serial, status, updated_at) SELECT $1, s, 'good', now() FROM unnest($2::text[]) AS s",
                [ca.name, serials],
              );
              await client.end();
              // Without --all: the store holds no responses yet, so "what is missing" is every certificate.
              presign(pki, pgConfig, 'PostgreSQL', false);
              const daemon = await startProfiled(pgConfig);
              return { daemon, answers: await warmAndCheck('store hit, PostgreSQL', daemon.url, ders, certIds, serials, ca.caCertFile, pki.dir), floorStore: ['--postgres', url] };
            },
          } as Phase,
        ]
      : []),
  ];
  const phases = allPhases.filter((p) => runPhase(p.key));

  let bare: { url: string; proc: ChildProcess } | undefined;
  const running: Responder[] = [];
  const floors: ChildProcess[] = [];
  const figures: Record<string, unknown> = {};
  const signed: Record<string, number> = {};
  const summary: string[] = [];
  try {
    for (const phase of phases) {
      const { daemon, answers, after, floorStore } = await phase.start();
      running.push(daemon);
      const floor = floorStore && (await startReferenceServer('store-hit-floor-server.js', [...floorStore, '--ca', ca.name, '--name-hash', nameHash.toString('hex'), '--key-hash', keyHash.toString('hex')], 'floor'));
      if (floor) {
        floors.push(floor.proc);
        await checkFloor(floor.url, ders, answers);
      }
      if (!bare) {
        // The reference serves one real response of the daemon's.
        const derFile = join(pki.dir, 'fixed-response.der');
        writeFileSync(derFile, answers[0]!);
        bare = await startReferenceServer('fixed-der-server.js', [derFile], 'bare');
      }
      const b = bare;
      // Each daemon figure right after its reference: the machine is shared, its load drifts.
      const targets: Target[] = (['GET', 'POST'] as Method[]).flatMap((method) => [
        { key: `bare${cap(method)}`, label: `bare node:http fixed DER, ${method}`, url: b.url, method, pid: b.proc.pid! },
        ...(floor ? [{ key: `floor${cap(method)}`, label: `floor: the least store-hit server on the daemon's parts, ${method}`, url: floor.url, method, pid: floor.proc.pid!, floor: true }] : []),
        { key: `${phase.key}${cap(method)}`, label: `${phase.label}, ${method}`, url: daemon.url, method, pid: daemon.proc.pid!, daemon },
      ]);
      for (const t of targets) checkFailures(`${t.label} (warm-up)`, wrk(t.url, t.method, fileOf(t.method), 2)); // JIT, connections
      const signaturesBefore = await signatures(daemon.url);
      const runs: Record<string, WrkResult>[] = [];
      const serverSide: Record<string, { wrkOk: number; serverSuccessful: number; serverOther: number }[]> = {};
      for (let run = 0; run < RUNS; run++) {
        const results: Record<string, WrkResult> = {};
        for (const t of targets) {
          const before = t.daemon ? await answered(t.url, t.method) : undefined;
          const r = wrk(t.url, t.method, fileOf(t.method), SECONDS, t.pid);
          checkFailures(t.label, r);
          if (t.daemon && before) {
            // The daemon's own count: every answer it sent in this window, successful or not.
            const after = await answered(t.url, t.method);
            const s = { wrkOk: r.ok, serverSuccessful: after.successful - before.successful, serverOther: after.other - before.other };
            (serverSide[t.key] ??= []).push(s);
            if (s.serverOther > MAX_FAILED * s.serverSuccessful) throw new Error(`${t.label}: the daemon answered ${s.serverOther} requests unsuccessfully (metrics)`);
            if (s.serverSuccessful < r.ok) throw new Error(`${t.label}: wrk counted ${r.ok} ok, the daemon only ${s.serverSuccessful} successful`);
          }
          results[t.key] = r;
        }
        runs.push(results);
        console.error(`${phase.key} run ${run + 1}: ` + targets.map((t) => `${t.key} ${Math.round(results[t.key]!.okPerSecond)}/s`).join(', '));
      }
      const n = (await signatures(daemon.url)) - signaturesBefore;
      signed[phase.key] = n;
      if (n !== 0) throw new Error(`${phase.label}: ${n} signatures made while measuring: answers did not all come from ${phase.key === 'hotCache' ? 'the cache' : 'the store'}`);
      after?.();
      const code = await daemon.stop();
      running.splice(running.indexOf(daemon), 1);
      if (floor) await stopProcess(floor.proc);
      if (code !== 0) throw new Error(`${phase.label}: daemon exited ${code}:\n${daemon.output().slice(-2000)}`);

      const phaseFigures: Record<string, ReturnType<typeof figureOf>> = {};
      for (const t of targets) {
        const bareKey = `bare${cap(t.method)}`;
        phaseFigures[t.key] = figureOf(t, runs, bareKey, serverSide[t.key]);
        const x = phaseFigures[t.key]!;
        if (t.floor) {
          summary.push(
            `${t.label}: ${x.medianOkPerSecond}/s = ratio ${x.medianRatioToBare} to bare ${t.method} (the most a daemon on these parts could reach; target ${TARGET_RATIOS[phase.key]}); ` +
              `server CPU ${x.medianServerCpuUsPerOk} µs/answer (${x.medianServerCores} cores, wrk ${x.medianWrkCores}) (median of ${RUNS})`,
          );
          continue;
        }
        if (!t.daemon) continue;
        const goal = TARGET_RATIOS[phase.key];
        const target = ` (target >= ${goal}${x.medianRatioToBare! >= goal ? ', met' : ', NOT met'})`;
        summary.push(
          `${t.label}: ${x.medianOkPerSecond}/s = ratio ${x.medianRatioToBare} to bare ${t.method} (bare ${phaseFigures[bareKey]!.medianOkPerSecond}/s)${target}; ` +
            `server CPU ${x.medianServerCpuUsPerOk} µs/answer (bare ${phaseFigures[bareKey]!.medianServerCpuUsPerOk}; ${x.medianServerCores} cores, wrk ${x.medianWrkCores}); ` +
            `p50 ${x.medianP50ms.toFixed(2)} ms, p99 ${x.medianP99ms.toFixed(2)} ms; ${x.failed} failed of ${x.ok + x.failed} (median of ${RUNS})`,
        );
      }
      figures[phase.key] = phaseFigures;
      for (const line of summary.slice(floor ? -4 : -2)) console.error(line);
    }

    const report = {
      benchmark: 'serve-hits',
      method:
        `Each daemon measured alone beside the bare server (started, warmed, measured, stopped; PostgreSQL started only for its phase); ` +
        `wrk -t${THREADS} -c${CONNECTIONS} from 127.0.0.1, ${SECONDS}s per figure, ${RUNS} runs, bare GET, daemon GET, bare POST, daemon POST in each run; ` +
        `${CERTS} distinct good certificates (EC P-256 delegated responder, SHA-1 CertIDs, no nonce), wrk rotating through all of them ` +
        `(GET /{url-encoded base64 DER}, POST application/ocsp-request); ok = HTTP 200 and a successful OCSPResponse (checked by the lua script), ` +
        `ratio = daemon ok/s over the bare server's ok/s for the same method in the same run, medians; ` +
        `server CPU per answer and cores from /proc (the daemon process only: PostgreSQL's own CPU is not in it), wrk's cores from the bench's waited-for children. ` +
        `Bare: node:http answering every request with one fixed real DER response (POST body read, nothing parsed). ` +
        `Hot cache: daemon, pre-production on, cache on (defaults), SQLite store presigned then warmed by one request per certificate, ` +
        `then the store's responses deleted so any miss would have to be signed. Store hit: daemon with cache off (cache.maxSize 0), ` +
        `every certificate presigned into SQLite (ocsp-hsm presign --all) or a throwaway PostgreSQL cluster (fsync off, 127.0.0.1; ocsp-hsm presign). ` +
        `Floor (store phases): store-hit-floor-server.ts on the same store, measured after the bare server in each run (bare, floor, daemon), its answers checked equal to the daemon's.`,
      machine: machine(),
      targetRatios: TARGET_RATIOS,
      checks: {
        responsesVerified: `all ${CERTS} per daemon by bytes (successful, CertID asked + good); ${SAMPLE} decoded by pkijs and GET = POST bytes; openssl signature check on 2`,
        signaturesWhileMeasuring: signed,
        hotCacheStoredResponsesAfter: hotStored,
        maxFailedShare: MAX_FAILED,
      },
      results: figures,
    };
    const resultFile = ONLY ? `serve-hits-only-${ONLY.join('-')}.json` : 'serve-hits.json';
    writeFileSync(join(ROOT, 'bench/results', resultFile), JSON.stringify({ ...report, ...(ONLY ? { only: ONLY } : {}) }, null, 2) + '\n');
    for (const line of summary) console.log(line);
  } finally {
    if (bare) await stopProcess(bare.proc);
    for (const d of running) await d.stop();
    for (const f of floors) await stopProcess(f);
    agent.destroy();
  }
  if (values['gc-nvp']) for (const line of gcSummary(readFileSync(TRACE_GC_FILE!, 'utf8'))) console.log(line);
}

/**
 * Per server label in a --trace-gc-nvp file (`label: [pid:…] … gc=s … promoted=N …`): the scavenges, the median
 * of the bytes each promoted to the old generation, and the mark-compacts.
 */
function gcSummary(text: string): string[] {
  const by = new Map<string, { promoted: number[]; markCompacts: number }>();
  for (const line of text.split('\n')) {
    const m = /^(\w+): \[\d+:[^\]]*\].* gc=(\w+) /.exec(line);
    if (!m) continue;
    const s = by.get(m[1]!) ?? { promoted: [], markCompacts: 0 };
    by.set(m[1]!, s);
    if (m[2] === 's') s.promoted.push(Number(/ promoted=(\d+)/.exec(line)?.[1] ?? NaN));
    else if (m[2] === 'mc') s.markCompacts++;
  }
  return [...by].map(([label, s]) =>
    `GC ${label}: ${s.promoted.length} scavenges, median ${(median(s.promoted) / 1024).toFixed(0)} KiB promoted each, ${s.markCompacts} mark-compacts`);
}

function cap(m: Method): string {
  return m === 'GET' ? 'Get' : 'Post';
}

function figureOf(t: Target, runs: Record<string, WrkResult>[], bareKey: string, daemonMetrics?: unknown[]) {
  const rs = runs.map((r) => r[t.key]!);
  return {
    label: t.label,
    medianOkPerSecond: Math.round(median(rs.map((r) => r.okPerSecond))),
    ...(t.daemon || t.floor ? { medianRatioToBare: Math.round(median(runs.map((r) => r[t.key]!.okPerSecond / r[bareKey]!.okPerSecond)) * 1000) / 1000 } : {}),
    medianServerCpuUsPerOk: Math.round(median(rs.map((r) => r.serverCpuUsPerOk!)) * 10) / 10,
    medianServerSysUsPerOk: Math.round(median(rs.map((r) => r.serverSysUsPerOk!)) * 10) / 10,
    medianServerCores: Math.round(median(rs.map((r) => r.serverCores!)) * 100) / 100,
    medianWrkCores: Math.round(median(rs.map((r) => r.wrkCores!)) * 100) / 100,
    medianP50ms: median(rs.map((r) => r.p50ms)),
    medianP99ms: median(rs.map((r) => r.p99ms)),
    failed: rs.reduce((n, r) => n + r.failed, 0),
    ok: rs.reduce((n, r) => n + r.ok, 0),
    runs: rs.map((r) => ({
      okPerSecond: Math.round(r.okPerSecond), serverCpuUsPerOk: Math.round(r.serverCpuUsPerOk! * 10) / 10, serverSysUsPerOk: Math.round(r.serverSysUsPerOk! * 10) / 10,
      serverCores: Math.round(r.serverCores! * 100) / 100, wrkCores: Math.round(r.wrkCores! * 100) / 100, ok: r.ok, failed: r.failed, non200: r.non200, ocspError: r.ocspError, socketErrors: r.socketErrors, p50ms: r.p50ms, p99ms: r.p99ms })),
    ...(daemonMetrics ? { daemonMetrics } : {}),
  };
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
