// Benchmark (issue 14): live signing through the whole daemon (unique nonce requests, nothing cached or stored)
// against three references measured in the same run, interleaved: a bare node:http server that only signs, the
// way the daemon does, on as many sessions (http-sign-server.ts); `openssl ocsp` answering the same requests with
// a software key (openssl-responder.ts); and the raw signing loop (raw-sign-loop.ts, no HTTP at all).
// usage: npm run bench -- live-signing [--runs N] [--seconds S] [--sessions N] [--keys ec-p256,rsa-2048] [--raw-threads 1,2,3,4] [--max-concurrent N]
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createVerify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTestPki, nonceTemplate, Responder, ROOT, startResponder, TestCa, TestPki, variantConfig } from '../native-test/support/harness';
import { DEFAULT_SESSIONS } from '../src/config/schema';
import { readCertificate } from '../src/pki/certificate';
import { cpuSeconds, machine, median } from './machine';
import { OpensslPeer, opensslPeer } from './openssl-responder';
import { rawSignLoop } from './raw-sign-loop';

const { values } = parseArgs({
  options: { runs: { type: 'string' }, seconds: { type: 'string' }, sessions: { type: 'string' }, keys: { type: 'string' }, 'raw-threads': { type: 'string' }, 'max-concurrent': { type: 'string' } },
});
const RUNS = Number(values.runs ?? 3);
const SECONDS = Number(values.seconds ?? 5);
/** Sessions of the daemon and of the bare server: the daemon's default. */
const SESSIONS = Number(values.sessions ?? DEFAULT_SESSIONS);
const RAW_THREADS = (values['raw-threads'] ?? '1,2,3,4').split(',').map(Number);
const RAW_SECONDS = 3;
/** tokens[].limits.maxConcurrent; default: the daemon's (the token's sessions). */
const MAX_CONCURRENT = values['max-concurrent'] ? Number(values['max-concurrent']) : undefined;
const WRK = ['-t1', '-c32'];
const VALIDITY_DAYS = 1;

type Subject = 'bare' | 'openssl' | 'daemon';

interface Measured {
  okPerSecond: number;
  refused: number;
  socketErrors: number;
  p50ms: number;
  p99ms: number;
  /** Server CPU (every thread of its process) per successful answer. */
  cpuMicrosPerAnswer: number;
}

function wrk(url: string, pid: number, body: Buffer, nonceOffset: number, seconds: number, expect: 'ocsp' | 'signature'): Measured {
  const cpu0 = cpuSeconds(pid);
  const out = execFileSync('wrk', [...WRK, `-d${seconds}s`, '-s', join(ROOT, 'bench/wrk-nonce.lua'), url], {
    encoding: 'utf8', timeout: (seconds + 30) * 1000,
    env: { ...process.env, OCSP_BENCH_BODY: body.toString('hex'), OCSP_BENCH_NONCE_OFFSET: String(nonceOffset), OCSP_BENCH_EXPECT: expect },
  });
  const cpu = cpuSeconds(pid) - cpu0;
  const r = JSON.parse(/RESULT (\{.*\})/.exec(out)![1]!) as { ok: number; refused: number; socketErrors: number; seconds: number; p50ms: number; p99ms: number };
  return {
    okPerSecond: Math.round(r.ok / r.seconds), refused: r.refused, socketErrors: r.socketErrors, p50ms: r.p50ms, p99ms: r.p99ms,
    cpuMicrosPerAnswer: r.ok > 0 ? Math.round((cpu / r.ok) * 1e6) : 0,
  };
}

/** The bare node:http + sign reference server, on SESSIONS session threads. */
async function startHttpSigner(spec: object): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [join(__dirname, 'http-sign-server.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.once('data', (line: Buffer) => resolve((JSON.parse(line.toString()) as { port: number }).port));
    proc.once('exit', (code, signal) => reject(new Error(`the bare server exited (${code ?? signal}) before listening`)));
  });
  return { url: `http://127.0.0.1:${port}`, proc };
}

/** One answer of each OCSP responder must verify with openssl's client (nonce sent and checked, CA as anchor). */
function checkOcspAnswer(ca: TestCa, url: string, who: string): void {
  const r = spawnSync('openssl', ['ocsp', '-issuer', ca.caCertFile, '-cert', ca.good.file, '-CAfile', ca.caCertFile, '-url', url, '-timeout', '10'], {
    encoding: 'utf8', timeout: 30_000,
  });
  const text = `${r.stdout}${r.stderr}`;
  if (!/Response verify OK/.test(text) || !/: good/.test(text) || /WARNING/i.test(text)) throw new Error(`${who}'s answer did not verify:\n${text}`);
}

/** One answer of the bare server must be a valid signature of the request by the responder key. */
async function checkSignature(url: string, certFile: string, body: Buffer): Promise<void> {
  const sig = await new Promise<Buffer>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.on('error', reject);
    req.end(body);
  });
  if (!createVerify('sha256').update(body).verify(readCertificate(certFile).x509.publicKey, sig)) throw new Error('the bare server signed wrongly');
}

/** A measurement of a server that must still be running after it (SoftHSM2 2.6.1 crashes now and then). */
function alive<T>(proc: ChildProcess, who: string, f: () => T): T {
  const r = f();
  // The event loop was blocked in wrk: a child that died meanwhile is a zombie not yet reaped.
  if (!running(proc.pid!)) throw new Error(`${who} died during the run`);
  return r;
}

function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

/** A fresh `openssl ocsp` for one measurement (see openssl-responder.ts for why), stopped after it. */
async function withOpenssl<T>(peer: OpensslPeer, f: (url: string, pid: number) => T): Promise<T> {
  const r = await peer.start();
  try {
    return f(r.url, r.proc.pid!);
  } finally {
    await r.stop();
  }
}

function daemonConfig(pki: TestPki): string {
  return variantConfig(pki, 'bench', (c) => {
    c.tokens[0].sessions = SESSIONS;
    c.tokens[0].limits = { maxQueue: 10_000, queueTimeout: '5s', ...(MAX_CONCURRENT ? { maxConcurrent: MAX_CONCURRENT } : {}) };
    c.cache = { maxSize: 0 };
    c.defaults = { ...c.defaults, validity: `${VALIDITY_DAYS}d`, preProduction: { enabled: false } };
  });
}

async function benchKey(keySpec: 'ec-p256' | 'rsa-2048') {
  const pki = createTestPki([{ name: 'bench', caKey: keySpec, responderKey: keySpec }]);
  const ca = pki.cas[0]!;
  process.env.SOFTHSM2_CONF = pki.softhsmConf;
  const key = { modulePath: pki.modulePath, tokenLabel: pki.tokenLabel, pinFile: pki.userPinFile, keyLabel: ca.responderKeyLabel!, certFile: ca.responderCertFile! };
  const t = nonceTemplate(ca, ca.good.file);
  let daemon: Responder | undefined;
  let bare: { url: string; proc: ChildProcess } | undefined;
  const runs: (Record<Subject, Measured> & { raw: { threads: number; signsPerSecond: number; cpuMicrosPerSign: number } })[] = [];
  try {
    daemon = await startResponder(pki, { config: daemonConfig(pki) });
    bare = await startHttpSigner({ ...key, sessions: SESSIONS });
    const peer = await opensslPeer(pki, ca, keySpec, VALIDITY_DAYS);
    const d = daemon;
    const b = bare;
    const measure: Record<Subject, (seconds: number) => Promise<Measured>> = {
      bare: async (seconds) => alive(b.proc, 'the bare server', () => wrk(b.url, b.proc.pid!, t.der, t.nonceOffset, seconds, 'signature')),
      daemon: async (seconds) => alive(d.proc, 'the daemon', () => wrk(d.url, d.proc.pid!, t.der, t.nonceOffset, seconds, 'ocsp')),
      openssl: (seconds) => withOpenssl(peer, (url, pid) => wrk(url, pid, t.der, t.nonceOffset, seconds, 'ocsp')),
    };
    checkOcspAnswer(ca, daemon.url, 'the daemon');
    await withOpenssl(peer, (url) => checkOcspAnswer(ca, url, 'openssl ocsp'));
    await checkSignature(bare.url, key.certFile, t.der);
    for (const who of ['bare', 'daemon'] as const) await measure[who](2); // warm-up: JIT, connections, sessions
    const order: Subject[] = ['bare', 'openssl', 'daemon'];
    for (let i = 0; i < RUNS; i++) {
      const raw = rawSignLoop({ ...key, threads: RAW_THREADS, durationMs: RAW_SECONDS * 1000 }).best;
      const m = {} as Record<Subject, Measured>;
      // Each run starts with another subject, so none always follows the raw loop.
      for (let k = 0; k < order.length; k++) {
        const who = order[(i + k) % order.length]!;
        m[who] = await measure[who](SECONDS);
        if (m[who].okPerSecond === 0) throw new Error(`${who} answered nothing: ${JSON.stringify(m[who])}`);
      }
      runs.push({ ...m, raw: { threads: raw.threads, signsPerSecond: raw.signsPerSecond, cpuMicrosPerSign: raw.cpuMicrosPerSign } });
      console.error(
        `${keySpec} run ${i + 1}: raw ${raw.signsPerSecond}/s (${raw.threads} threads), bare http+sign ${m.bare.okPerSecond}/s, ` +
          `openssl ocsp ${m.openssl.okPerSecond}/s, daemon ${m.daemon.okPerSecond}/s (refused ${m.daemon.refused}, socket errors ${m.daemon.socketErrors}); ` +
          `daemon/bare ${(m.daemon.okPerSecond / m.bare.okPerSecond).toFixed(3)}, daemon/openssl ${(m.daemon.okPerSecond / m.openssl.okPerSecond).toFixed(3)}`,
      );
    }
  } finally {
    bare?.proc.kill('SIGTERM');
    await daemon?.stop();
  }
  const med = (f: (r: (typeof runs)[number]) => number, digits = 0) => Math.round(median(runs.map(f)) * 10 ** digits) / 10 ** digits;
  const subject = (s: Subject) => ({
    perSecond: med((r) => r[s].okPerSecond),
    cpuMicrosPerAnswer: med((r) => r[s].cpuMicrosPerAnswer),
    p50ms: med((r) => r[s].p50ms, 2),
    p99ms: med((r) => r[s].p99ms, 2),
    refused: runs.reduce((n, r) => n + r[s].refused, 0),
    socketErrors: runs.reduce((n, r) => n + r[s].socketErrors, 0),
  });
  return {
    key: keySpec,
    sessions: SESSIONS,
    daemon: subject('daemon'),
    bare: subject('bare'),
    openssl: subject('openssl'),
    raw: { signsPerSecond: med((r) => r.raw.signsPerSecond), cpuMicrosPerSign: med((r) => r.raw.cpuMicrosPerSign, 1), threads: runs.map((r) => r.raw.threads) },
    /** Medians of the per-run ratios (each run's subjects measured minutes apart at most). */
    daemonToBare: med((r) => r.daemon.okPerSecond / r.bare.okPerSecond, 3),
    daemonToOpenssl: med((r) => r.daemon.okPerSecond / r.openssl.okPerSecond, 3),
    daemonToRaw: med((r) => r.daemon.okPerSecond / r.raw.signsPerSecond, 3),
    runs,
  };
}

async function main(): Promise<void> {
  const results = [];
  const keys = (values.keys ?? 'ec-p256,rsa-2048').split(',') as ('ec-p256' | 'rsa-2048')[];
  const before = machine();
  for (const key of keys) results.push(await benchKey(key));
  const report = {
    benchmark: 'live-signing',
    method:
      `wrk ${WRK.join(' ')} from 127.0.0.1 (bench/wrk-nonce.lua: one request for the good certificate, SHA-1 CertID, a fresh 16-byte nonce each), ` +
      `${SECONDS} s per subject, ${RUNS} runs, subjects interleaved in a rotating order, medians; ` +
      `daemon: sessions ${SESSIONS}, limits.maxConcurrent ${MAX_CONCURRENT ?? 'default (sessions)'}, cache.maxSize 0, pre-production off; bare: node:http + HsmToken/Pkcs11Signer on ${SESSIONS} sessions, answers with the signature; ` +
      `openssl ocsp -index -rsigner -rkey -CA -ndays ${VALIDITY_DAYS} (software key of the same type, one process); ` +
      `raw: worker threads each with its own session, C_SignInit + C_Sign in a tight loop, ${RAW_SECONDS} s per thread count ${RAW_THREADS.join('/')}, the fastest; ` +
      `CPU per answer: user + system of the server process (all threads, SoftHSM2 included) from /proc over the wrk run`,
    machine: { ...before, loadAverage1mAfter: machine().loadAverage1m },
    results,
  };
  writeFileSync(join(ROOT, 'bench/results/live-signing.json'), JSON.stringify(report, null, 2) + '\n');
  for (const r of results) {
    console.log(
      `${r.key}: daemon ${r.daemon.perSecond}/s (${r.daemon.cpuMicrosPerAnswer} µs CPU/answer, p50 ${r.daemon.p50ms} ms, p99 ${r.daemon.p99ms} ms); ` +
        `bare http+sign ${r.bare.perSecond}/s (${r.bare.cpuMicrosPerAnswer} µs); openssl ocsp ${r.openssl.perSecond}/s (${r.openssl.cpuMicrosPerAnswer} µs); ` +
        `raw ${r.raw.signsPerSecond}/s. Ratios (medians of runs): daemon/bare ${r.daemonToBare} (target 0.8), daemon/openssl ${r.daemonToOpenssl}` +
        `${r.key === 'ec-p256' ? ' (target 1)' : ''}, daemon/raw ${r.daemonToRaw}`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
