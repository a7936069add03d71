// Benchmark: the daemon with server.workers: 2 against workers: 1, measured in the same run, alternating:
//   hot     GET of one pre-produced answer already in every serving process's memory (the request memo path),
//           wrk -t2 -c64: what more processes add to answers that need no signature;
//   live    POST with a fresh nonce each (signed for each request through the primary), wrk -t1 -c32: what the
//           IPC round trip to the primary costs a signature;
// the CPU all the daemon's processes spend per answer (less sensitive than rates to what else runs on the machine),
// and the resident memory of each process once warmed. SoftHSM2 signs on the same cores as everything else.
// usage: npm run bench -- workers [--runs N] [--seconds S] [--workers N]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTestPki, nonceTemplate, opensslQuery, Responder, ROOT, rssMiB, startResponder, TestCa, TestPki, variantConfig } from '../native-test/support/harness';
import { machine, median } from './machine';

const { values } = parseArgs({ options: { runs: { type: 'string' }, seconds: { type: 'string' }, workers: { type: 'string' } } });
const RUNS = Number(values.runs ?? 3);
const SECONDS = Number(values.seconds ?? 5);
const WORKERS = Number(values.workers ?? 2);

interface Figures {
  hotGetPerSecond: number; livePostPerSecond: number; liveP99ms: number;
  /** CPU of every process of the daemon (SoftHSM2's signing included: it runs in the primary) per answer. */
  hotCpuUsPerAnswer: number; liveCpuUsPerAnswer: number;
  rssMiB: { primary: number; workers: number[] };
}

/** User + system CPU milliseconds of these processes so far (/proc/PID/stat, clock ticks of 10 ms). */
function cpuMs(pids: number[]): number {
  return pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return sum + (Number(fields[11]) + Number(fields[12])) * 10;
  }, 0);
}

function wrk(args: string[], env: Record<string, string>): { ok: number; seconds: number; p99ms?: number } {
  const out = execFileSync('wrk', args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: (SECONDS + 30) * 1000 });
  const r = JSON.parse(/RESULT (\{.*\})/.exec(out)?.[1] ?? 'null') as { ok: number; seconds: number; p99ms?: number; failed?: number } | null;
  if (!r) throw new Error(`wrk printed no RESULT:\n${out}`);
  if ((r.failed ?? 0) > 0) throw new Error(`${r.failed} failed answers: ${out}`);
  return r;
}

function workerPids(r: Responder): number[] {
  const pids = new Map<number, number>();
  for (const m of r.output().matchAll(/"worker":(\d+),"pid":(\d+),"port":\d+,"msg":"serving process listening"/g)) pids.set(Number(m[1]), Number(m[2]));
  return [...pids.values()];
}

async function measure(pki: TestPki, hot: TestCa, live: TestCa, workers: number, getFile: string): Promise<Figures> {
  const config = variantConfig(pki, `workers-${workers}`, (c) => {
    c.server.workers = workers;
    c.tokens[0].sessions = 4;
    c.tokens[0].limits = { maxQueue: 10_000, queueTimeout: '5s' };
    c.cas[0].preProduction = { enabled: true, hashes: ['sha1'] };
  });
  const responder = await startResponder(pki, { config });
  try {
    // Fresh connections: every serving process gets the answer into its memory.
    for (let i = 0; i < 4 * workers; i++) {
      if (!/: good/.test(opensslQuery(hot, responder.url, [hot.good.file], ['-no_nonce']))) throw new Error('warming failed');
    }
    const pids = [responder.proc.pid!, ...workerPids(responder)];
    const cpu0 = cpuMs(pids);
    const get = wrk(['-t2', '-c64', `-d${SECONDS}s`, '-s', join(ROOT, 'bench/wrk-requests.lua'), responder.url], { OCSP_BENCH_FILE: getFile, OCSP_BENCH_METHOD: 'GET' });
    const cpu1 = cpuMs(pids);
    const t = nonceTemplate(live, live.good.file);
    const post = wrk(['-t1', '-c32', `-d${SECONDS}s`, '-s', join(ROOT, 'bench/wrk-nonce.lua'), responder.url], {
      OCSP_BENCH_BODY: t.der.toString('hex'), OCSP_BENCH_NONCE_OFFSET: String(t.nonceOffset),
    });
    const cpu2 = cpuMs(pids);
    return {
      hotGetPerSecond: Math.round(get.ok / get.seconds), livePostPerSecond: Math.round(post.ok / post.seconds), liveP99ms: post.p99ms ?? NaN,
      hotCpuUsPerAnswer: Math.round(((cpu1 - cpu0) * 1000) / get.ok), liveCpuUsPerAnswer: Math.round(((cpu2 - cpu1) * 1000) / post.ok),
      rssMiB: { primary: Math.round(rssMiB(responder.proc.pid!)), workers: workerPids(responder).map((p) => Math.round(rssMiB(p))) },
    };
  } finally {
    await responder.stop();
  }
}

async function main(): Promise<void> {
  const pki = createTestPki([{ name: 'hot', caKey: 'ec-p256', responderKey: 'ec-p256' }, { name: 'live', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  const [hot, live] = pki.cas as [TestCa, TestCa];
  // One GET request line: the same pre-produced answer asked again and again.
  const der = readFileSync(requestFile(hot, pki.dir));
  const getFile = join(pki.dir, 'get.txt');
  writeFileSync(getFile, `/${encodeURIComponent(der.toString('base64'))}\n`);
  const runs: { one: Figures; many: Figures }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const one = await measure(pki, hot, live, 1, getFile);
    const many = await measure(pki, hot, live, WORKERS, getFile);
    runs.push({ one, many });
    console.error(`run ${i + 1}: hot GET ${one.hotGetPerSecond} -> ${many.hotGetPerSecond}/s (${one.hotCpuUsPerAnswer} -> ${many.hotCpuUsPerAnswer} µs CPU each), ` +
      `live POST ${one.livePostPerSecond} -> ${many.livePostPerSecond}/s (${one.liveCpuUsPerAnswer} -> ${many.liveCpuUsPerAnswer} µs CPU each)`);
  }
  const m = (f: (r: { one: Figures; many: Figures }) => number) => median(runs.map(f));
  const report = {
    benchmark: 'workers',
    method: `server.workers ${WORKERS} against 1, alternating, ${RUNS} runs of ${SECONDS} s each, medians; hot: wrk -t2 -c64 GET of one pre-produced answer in memory; live: wrk -t1 -c32 POST with a fresh nonce (EC P-256, 4 sessions, SoftHSM2 on the same cores); wrk and the daemon share the machine`,
    machine: machine(),
    hotGet: { one: m((r) => r.one.hotGetPerSecond), many: m((r) => r.many.hotGetPerSecond), ratio: Math.round(m((r) => r.many.hotGetPerSecond / r.one.hotGetPerSecond) * 100) / 100 },
    livePost: { one: m((r) => r.one.livePostPerSecond), many: m((r) => r.many.livePostPerSecond), ratio: Math.round(m((r) => r.many.livePostPerSecond / r.one.livePostPerSecond) * 100) / 100 },
    cpuUsPerAnswer: {
      hotGet: { one: m((r) => r.one.hotCpuUsPerAnswer), many: m((r) => r.many.hotCpuUsPerAnswer) },
      livePost: { one: m((r) => r.one.liveCpuUsPerAnswer), many: m((r) => r.many.liveCpuUsPerAnswer) },
    },
    loadAverage: loadavg().map((x) => Math.round(x * 10) / 10),
    runs,
  };
  writeFileSync(join(ROOT, `bench/results/workers-${WORKERS}.json`), JSON.stringify(report, null, 2) + '\n');
  console.log(JSON.stringify({ hotGet: report.hotGet, livePost: report.livePost, cpuUsPerAnswer: report.cpuUsPerAnswer, loadAverage: report.loadAverage }));
}

/** A DER OCSP request (SHA-1 CertID, no nonce) for the CA's good certificate, written by openssl. */
function requestFile(ca: TestCa, dir: string): string {
  const f = join(dir, 'hot-request.der');
  execFileSync('openssl', ['ocsp', '-issuer', ca.caCertFile, '-cert', ca.good.file, '-no_nonce', '-reqout', f]);
  return f;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
