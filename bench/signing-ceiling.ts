// Benchmark (issue 12): signatures per second the HSM makes under overload, as a ratio of the configured ceiling
// (the hsm-limits native test's token limits: rate 200, burst 20, maxQueue 64, queueTimeout 250ms), counted at the
// HSM by the PKCS#11 shim, with the load offered, and the share of refusals (tryLater) the daemon answered within
// 50 ms by its own histogram. Three figures per run, one after the other:
//   limiter alone   the SigningLimiter on the real clock with demand that never runs out, each permit held 2 ms
//                   (limiter-saturate.ts; permits granted per second, no HSM);
//   wrk             the daemon loaded by wrk -t1 -c64, fresh nonce per request, answers not verified;
//   verifying load  the daemon loaded by the native test's generator (64 concurrent, every answer decoded with
//                   pkijs and its signature verified), which competes with the daemon for the same two cores.
// The machine is shared and noisy: medians of several runs. --hogs N adds N busy loops for the run, as on a loaded CI
// machine. --workers N runs the daemon with server.workers: N (default 1): the ceiling is the primary's, whichever
// serving process a request reaches.
// usage: npm run bench -- signing-ceiling [--runs N] [--seconds S] [--hogs N] [--workers N]
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createTestPki, metric, nonceTemplate, ROOT, runLoadProcess, startResponder, variantConfig } from '../native-test/support/harness';
import { Shim } from '../native-test/support/shim';
import { machine, median } from './machine';

const { values } = parseArgs({ options: { runs: { type: 'string' }, seconds: { type: 'string' }, hogs: { type: 'string' }, workers: { type: 'string' } } });
const RUNS = Number(values.runs ?? 5);
const SECONDS = Number(values.seconds ?? 10);
const HOGS = Number(values.hogs ?? 0);
const WORKERS = Number(values.workers ?? 1);
const RATE = 200;
const LIMITS = { rate: RATE, burst: 20, maxQueue: 64, queueTimeout: '250ms' };
const SESSIONS = 4;
const CONCURRENCY = 64;
/** Skipped at the start of each load: the burst and connection set-up. */
const SETTLE_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Signatures (permits, for the limiter alone) per second and as a ratio of the ceiling; the most in any second
 * (the ceiling allows rate + burst; for the HSM, counts sampled every 50 ms); the load offered.
 */
interface Figure { perSecond: number; ratio: number; maxInSecond: number; offeredPerSecond?: number; tryLaterWithin50ms?: number }

/** A sample summed over the daemon's serving processes (their series carry worker="N"; one process's none). */
async function summed(url: string, sample: string): Promise<number> {
  if (WORKERS === 1) return metric(url, sample);
  const text = await (await fetch(url + '/metrics', { signal: AbortSignal.timeout(10_000) })).text();
  let n = 0;
  for (const line of text.split('\n')) {
    const unlabelled = line.replace(/,worker="\d+"\}/, '}');
    if (unlabelled.startsWith(sample + ' ')) n += Number(unlabelled.slice(sample.length + 1));
  }
  return n;
}

/** The daemon's count of tryLater answers to POSTs: all of them, and those it gave within 50 ms. */
async function tryLaterCounts(url: string): Promise<{ all: number; within50: number }> {
  const bucket = (le: string) => summed(url, `ocsp_request_duration_seconds_bucket{le="${le}",method="POST",status="tryLater"}`);
  return { all: await bucket('+Inf'), within50: await bucket('0.05') };
}

/** Runs one load and adds the share of its refusals the daemon answered within 50 ms. */
async function withRefusalTimes(url: string, load: () => Promise<Figure>): Promise<Figure> {
  const before = await tryLaterCounts(url);
  const f = await load();
  const after = await tryLaterCounts(url);
  const all = after.all - before.all;
  return { ...f, tryLaterWithin50ms: all > 0 ? round((after.within50 - before.within50) / all, 4) : NaN };
}

/**
 * HSM signatures per second from SETTLE_MS into a load until SECONDS later, counted by the shim, and the most in
 * any second between two of its samples (every 50 ms).
 */
async function hsmRate(shim: Shim): Promise<{ perSecond: number; maxInSecond: number }> {
  await sleep(SETTLE_MS);
  const samples = [{ t: performance.now(), n: shim.signsOk() }];
  while (samples[samples.length - 1]!.t - samples[0]!.t < SECONDS * 1000) {
    await sleep(50);
    samples.push({ t: performance.now(), n: shim.signsOk() });
  }
  let maxInSecond = 0;
  for (let i = 0, j = 0; i < samples.length; i++) {
    while (j + 1 < samples.length && samples[j + 1]!.t - samples[i]!.t <= 1000) j++;
    maxInSecond = Math.max(maxInSecond, samples[j]!.n - samples[i]!.n);
  }
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  return { perSecond: (last.n - first.n) / ((last.t - first.t) / 1000), maxInSecond };
}

// Asynchronous: a blocked event loop would miss the daemon closing idle keep-alive connections, and the next
// metrics scrape would go out on a closed one.
async function limiterAlone(): Promise<Figure> {
  const spec = { ratePerSecond: RATE, burst: LIMITS.burst, maxConcurrent: SESSIONS, maxQueue: LIMITS.maxQueue, queueTimeoutMs: 250, clientShare: 0.5, workers: CONCURRENCY, holdMs: 2, seconds: SECONDS };
  const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, 'limiter-saturate.js'), JSON.stringify(spec)], { timeout: (SECONDS + 30) * 1000 });
  const { perSecond, maxInSecond } = JSON.parse(stdout) as { perSecond: number; maxInSecond: number };
  return { perSecond: round(perSecond, 1), ratio: round(perSecond / RATE), maxInSecond };
}

async function withWrk(url: string, shim: Shim, der: Buffer, nonceOffset: number): Promise<Figure> {
  const seconds = Math.ceil((SETTLE_MS + 500) / 1000) + SECONDS;
  const wrk = spawn('wrk', ['-t1', `-c${CONCURRENCY}`, `-d${seconds}s`, '-s', join(ROOT, 'bench/wrk-nonce.lua'), url], {
    env: { ...process.env, OCSP_BENCH_BODY: der.toString('hex'), OCSP_BENCH_NONCE_OFFSET: String(nonceOffset) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  wrk.stdout!.on('data', (d) => (out += d));
  const exited = once(wrk, 'exit');
  const { perSecond, maxInSecond } = await hsmRate(shim);
  await exited;
  const r = JSON.parse(/RESULT (\{.*\})/.exec(out)![1]!) as { ok: number; refused: number; seconds: number };
  return { perSecond: round(perSecond, 1), ratio: round(perSecond / RATE), maxInSecond, offeredPerSecond: Math.round((r.ok + r.refused) / r.seconds) };
}

async function withVerifyingLoad(url: string, shim: Shim, spec: { templateBase64: string; nonceOffset: number; responderPublicKeyPem: string }): Promise<Figure> {
  const load = runLoadProcess({ ...spec, url, durationMs: SETTLE_MS + 500 + SECONDS * 1000, concurrency: CONCURRENCY, expectStatusTag: 0, hash: 'sha256' });
  const { perSecond, maxInSecond } = await hsmRate(shim);
  const r = await load;
  if (r.wrongAnswers > 0) throw new Error(`${r.wrongAnswers} wrong answers`);
  return { perSecond: round(perSecond, 1), ratio: round(perSecond / RATE), maxInSecond, offeredPerSecond: Math.round(r.sent / (r.elapsedMs / 1000)) };
}

async function main(): Promise<void> {
  const pki = createTestPki([{ name: 'ceiling', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  const ca = pki.cas[0]!;
  const shim = Shim.build(pki.dir);
  const config = variantConfig(pki, 'ceiling', (c) => {
    c.tokens[0].module = shim.library;
    c.tokens[0].sessions = SESSIONS;
    c.tokens[0].limits = LIMITS;
    c.server.workers = WORKERS;
  });
  const responder = await startResponder(pki, { config, env: shim.env(pki.modulePath) });
  const t = nonceTemplate(ca, ca.good.file);
  const spec = { templateBase64: t.der.toString('base64'), nonceOffset: t.nonceOffset, responderPublicKeyPem: readFileSync(ca.responderCertFile!, 'utf8') };
  // Each hog also stops by itself after the longest the runs can take, should this process die without killing it.
  const hogMs = RUNS * (3 * SECONDS + 60) * 1000;
  const hogs: ChildProcess[] = Array.from({ length: HOGS }, () =>
    spawn(process.execPath, ['-e', `const end = performance.now() + ${hogMs}; while (performance.now() < end);`], { stdio: 'ignore' }));
  const runs: { loadavg1: number; limiterAlone: Figure; wrk: Figure; verifyingLoad: Figure }[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const loadavg1 = round(loadavg()[0]!, 2);
      const limiter = await limiterAlone();
      const w = await withRefusalTimes(responder.url, () => withWrk(responder.url, shim, t.der, t.nonceOffset));
      const v = await withRefusalTimes(responder.url, () => withVerifyingLoad(responder.url, shim, spec));
      runs.push({ loadavg1, limiterAlone: limiter, wrk: w, verifyingLoad: v });
      const line = (f: Figure) => `${f.ratio} (${f.perSecond}/s, most in a second ${f.maxInSecond}, offered ${f.offeredPerSecond}/s, tryLater within 50 ms ${f.tryLaterWithin50ms})`;
      console.error(`run ${i + 1} (load average ${loadavg1}): limiter alone ${limiter.ratio} (most in a second ${limiter.maxInSecond}); wrk ${line(w)}; verifying load ${line(v)}`);
    }
  } finally {
    for (const h of hogs) h.kill();
    await responder.stop();
  }
  const summary = (k: 'limiterAlone' | 'wrk' | 'verifyingLoad') => ({
    medianRatio: median(runs.map((r) => r[k].ratio)),
    medianPerSecond: median(runs.map((r) => r[k].perSecond)),
    // Above the ceiling: more than rate per second over a run, or more than rate + burst in one second.
    highestRatio: Math.max(...runs.map((r) => r[k].ratio)),
    mostInSecond: Math.max(...runs.map((r) => r[k].maxInSecond)),
    ...(k === 'limiterAlone' ? {} : {
      medianOfferedPerSecond: median(runs.map((r) => r[k].offeredPerSecond!)),
      medianTryLaterWithin50ms: median(runs.map((r) => r[k].tryLaterWithin50ms!)),
    }),
  });
  const report = {
    benchmark: 'signing-ceiling',
    method: `token limits ${JSON.stringify(LIMITS)}, ${SESSIONS} sessions, SoftHSM2 EC P-256 behind the counting shim; ${CONCURRENCY} concurrent requests with a fresh nonce each; HSM signatures counted for ${SECONDS} s from ${SETTLE_MS} ms into each load; ${RUNS} runs, medians; ${HOGS} CPU hogs; server.workers ${WORKERS}`,
    machine: machine(),
    ceilingPerSecond: RATE,
    limiterAlone: summary('limiterAlone'),
    wrk: summary('wrk'),
    verifyingLoad: summary('verifyingLoad'),
    runs,
  };
  const file = `signing-ceiling${HOGS > 0 ? `-hogs-${HOGS}` : ''}${WORKERS > 1 ? `-workers-${WORKERS}` : ''}.json`;
  writeFileSync(join(ROOT, 'bench/results', file), JSON.stringify(report, null, 2) + '\n');
  for (const k of ['limiterAlone', 'wrk', 'verifyingLoad'] as const) {
    const s = report[k];
    const load = 'medianOfferedPerSecond' in s ? `, offered ${s.medianOfferedPerSecond}/s, tryLater within 50 ms ${s.medianTryLaterWithin50ms}` : '';
    console.log(`${k}: ${s.medianPerSecond}/s = ${s.medianRatio} of the ${RATE}/s ceiling${load} (median of ${RUNS}); highest run ${s.highestRatio}, most in one second ${s.mostInSecond} (ceiling ${RATE + LIMITS.burst})`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
