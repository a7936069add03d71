// Benchmark (issue 3): live signing throughput through the whole daemon (unique nonce requests, nothing
// cached) as a ratio of the raw pkcs11js async sign loop on the same key, measured in the same run.
// usage: npm run bench -- live-signing [--runs N] [--seconds S]
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTestPki, nonceTemplate, ROOT, startResponder, variantConfig } from '../native-test/support/harness';
import { machine, median } from './machine';

const { values } = parseArgs({ options: { runs: { type: 'string' }, seconds: { type: 'string' }, sessions: { type: 'string' }, keys: { type: 'string' } } });
const RUNS = Number(values.runs ?? 5);
const SECONDS = Number(values.seconds ?? 5);
/** Sessions of the daemon; the raw loop always uses 4, its best (about 2 per core). */
const SESSIONS = Number(values.sessions ?? 4);
const RAW_SESSIONS = 4;

function rawLoop(spec: object): number {
  const r = spawnSync(process.execPath, [join(__dirname, 'raw-sign-loop.js'), JSON.stringify(spec)], {
    encoding: 'utf8', env: { ...process.env, UV_THREADPOOL_SIZE: String(RAW_SESSIONS) }, timeout: (SECONDS + 30) * 1000,
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { signsPerSecond: number }).signsPerSecond;
}

/** The bare node:http + sign reference server (http-sign-server.ts), on the same sessions as the raw loop. */
async function startHttpSigner(spec: object): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [join(__dirname, 'http-sign-server.js'), JSON.stringify(spec)], {
    env: { ...process.env, UV_THREADPOOL_SIZE: String(RAW_SESSIONS) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(proc.stdout!, 'data')) as [Buffer];
  return { url: `http://127.0.0.1:${(JSON.parse(line.toString()) as { port: number }).port}`, proc };
}

function wrk(url: string, body: Buffer, nonceOffset: number, seconds: number) {
  const out = execFileSync('wrk', ['-t1', '-c32', `-d${seconds}s`, '-s', join(ROOT, 'bench/wrk-nonce.lua'), url], {
    encoding: 'utf8', env: { ...process.env, OCSP_BENCH_BODY: body.toString('hex'), OCSP_BENCH_NONCE_OFFSET: String(nonceOffset) },
    timeout: (seconds + 30) * 1000,
  });
  const r = JSON.parse(/RESULT (\{.*\})/.exec(out)![1]!) as { ok: number; refused: number; seconds: number; p50ms: number; p99ms: number };
  return { okPerSecond: r.ok / r.seconds, refused: r.refused, p50ms: r.p50ms, p99ms: r.p99ms };
}

async function benchKey(keySpec: 'ec-p256' | 'rsa-2048') {
  const pki = createTestPki([{ name: 'bench', caKey: keySpec, responderKey: keySpec }]);
  const ca = pki.cas[0]!;
  const config = variantConfig(pki, 'bench', (c) => {
    c.tokens[0].sessions = SESSIONS;
    c.tokens[0].limits = { maxQueue: 10_000, queueTimeout: '5s' };
  });
  process.env.SOFTHSM2_CONF = pki.softhsmConf;
  const responder = await startResponder(pki, { config });
  const t = nonceTemplate(ca, ca.good.file);
  const raw = { modulePath: pki.modulePath, tokenLabel: pki.tokenLabel, pinFile: pki.userPinFile, keyLabel: ca.responderKeyLabel,
    keyType: keySpec.startsWith('ec') ? 'ec' : 'rsa', sessions: RAW_SESSIONS, durationMs: SECONDS * 1000, dataBytes: 250 };
  const runs: {
    rawSignsPerSecond: number; httpSignPerSecond: number; daemonOkPerSecond: number; ratio: number; httpSignRatio: number;
    p50ms: number; p99ms: number; refused: number;
  }[] = [];
  const { durationMs: _unused, ...serverSpec } = raw;
  const httpSigner = await startHttpSigner(serverSpec);
  try {
    wrk(responder.url, t.der, t.nonceOffset, 2); // warm-up: JIT, connections, token sessions
    wrk(httpSigner.url, t.der, t.nonceOffset, 2);
    for (let i = 0; i < RUNS; i++) {
      const rawRate = rawLoop(raw);
      const h = wrk(httpSigner.url, t.der, t.nonceOffset, SECONDS);
      const d = wrk(responder.url, t.der, t.nonceOffset, SECONDS);
      runs.push({
        rawSignsPerSecond: Math.round(rawRate), httpSignPerSecond: Math.round(h.okPerSecond), daemonOkPerSecond: Math.round(d.okPerSecond),
        ratio: d.okPerSecond / rawRate, httpSignRatio: h.okPerSecond / rawRate, p50ms: d.p50ms, p99ms: d.p99ms, refused: d.refused,
      });
      console.error(`${keySpec} run ${i + 1}: raw ${Math.round(rawRate)}/s, bare http+sign ${Math.round(h.okPerSecond)}/s (${(h.okPerSecond / rawRate).toFixed(3)}), daemon ${Math.round(d.okPerSecond)}/s, ratio ${(d.okPerSecond / rawRate).toFixed(3)}, p50 ${d.p50ms} ms, p99 ${d.p99ms} ms`);
    }
  } finally {
    httpSigner.proc.kill();
    await responder.stop();
  }
  return {
    key: keySpec,
    sessions: SESSIONS,
    medianRawSignsPerSecond: Math.round(median(runs.map((r) => r.rawSignsPerSecond))),
    medianHttpSignPerSecond: Math.round(median(runs.map((r) => r.httpSignPerSecond))),
    medianHttpSignRatio: Math.round(median(runs.map((r) => r.httpSignRatio)) * 1000) / 1000,
    medianDaemonPerSecond: Math.round(median(runs.map((r) => r.daemonOkPerSecond))),
    medianRatio: Math.round(median(runs.map((r) => r.ratio)) * 1000) / 1000,
    medianP50ms: median(runs.map((r) => r.p50ms)),
    medianP99ms: median(runs.map((r) => r.p99ms)),
    runs,
  };
}

async function main(): Promise<void> {
  const results = [];
  const keys = (values.keys ?? 'ec-p256,rsa-2048').split(',') as ('ec-p256' | 'rsa-2048')[];
  for (const key of keys) results.push(await benchKey(key));
  const report = { benchmark: 'live-signing', method: `wrk -t1 -c32, unique 16-byte nonce per request, ${SECONDS}s per run, ${RUNS} runs; daemon sessions ${SESSIONS}; raw loop: pkcs11js C_SignAsync on ${RAW_SESSIONS} sessions; bare http+sign: node:http answering each POST with one signature on the same ${RAW_SESSIONS} sessions (no OCSP work)`, machine: machine(), results };
  writeFileSync(join(ROOT, 'bench/results/live-signing.json'), JSON.stringify(report, null, 2) + '\n');
  for (const r of results) {
    console.log(`${r.key}: daemon ${r.medianDaemonPerSecond}/s vs raw ${r.medianRawSignsPerSecond}/s = ratio ${r.medianRatio} (median of ${RUNS}); latency p50 ${r.medianP50ms} ms, p99 ${r.medianP99ms} ms; bare http+sign ${r.medianHttpSignPerSecond}/s = ratio ${r.medianHttpSignRatio}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
