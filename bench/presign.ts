// Benchmark (issue 14): pre-signing rate of `ocsp-hsm presign --all` over 100,000 certificates (one response each,
// SHA-1 CertIDs, stored in SQLite) as a ratio of the fastest raw signing loop on the same key (raw-sign-loop.ts:
// synchronous C_SignInit + C_Sign in worker threads, each its own session, at the fastest thread count), measured
// before each run. Reports each side's CPU: the response's own work per certificate is presign's CPU per response
// minus the raw loop's per signature, and on this machine it bounds the ratio.
// usage: npm run bench -- presign [--runs N] [--certs N] [--sessions N] [--raw-threads 1,2,3,4] [--max-concurrent N] [--cpu-prof-dir DIR]
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { parse } from 'yaml';
import { childEnv, CLI, createTestPki, ROOT, variantConfig } from '../native-test/support/harness';
import { DEFAULT_SESSIONS } from '../src/config/schema';
import { cpuSeconds, machine, mainThreadCpuSeconds, median } from './machine';
import { rawSignLoop } from './raw-sign-loop';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' }, certs: { type: 'string' }, sessions: { type: 'string' }, 'raw-threads': { type: 'string' }, 'max-concurrent': { type: 'string' }, 'cpu-prof-dir': { type: 'string' },
  },
});
const RUNS = Number(values.runs ?? 3);
const CERTS = Number(values.certs ?? 100_000);
const SESSIONS = Number(values.sessions ?? DEFAULT_SESSIONS);
const RAW_THREADS = (values['raw-threads'] ?? '1,2,3,4').split(',').map(Number);
const RAW_SECONDS = 3;
/** tokens[].limits.maxConcurrent; default: the daemon's (the token's sessions). */
const MAX_CONCURRENT = values['max-concurrent'] ? Number(values['max-concurrent']) : undefined;
const PROFILE_DIR = values['cpu-prof-dir'];

/** Runs `ocsp-hsm presign --all`; its CPU is sampled every 50 ms until it exits (startup included). */
async function presign(config: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; cpuSeconds: number; mainCpuSeconds: number }> {
  // --cpu-prof profiles the main thread and each session thread, one file each.
  const prof = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [];
  const proc = spawn(process.execPath, [...prof, CLI, 'presign', '--all', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let cpu = 0;
  let mainCpu = 0;
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const sampler = setInterval(() => {
    try {
      mainCpu = mainThreadCpuSeconds(proc.pid!);
      cpu = cpuSeconds(proc.pid!);
    } catch {
      // exited between samples
    }
  }, 50);
  const killer = setTimeout(() => proc.kill('SIGKILL'), 600_000);
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  clearInterval(sampler);
  clearTimeout(killer);
  if (code !== 0) throw new Error(`presign exited ${code ?? proc.signalCode}: ${stderr}`);
  return { stdout, cpuSeconds: cpu, mainCpuSeconds: mainCpu };
}

async function main(): Promise<void> {
  const pki = createTestPki([{ name: 'bench', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  const ca = pki.cas[0]!;
  const config = variantConfig(pki, 'presign', (c) => {
    c.tokens[0].sessions = SESSIONS;
    if (MAX_CONCURRENT) c.tokens[0].limits = { ...c.tokens[0].limits, maxConcurrent: MAX_CONCURRENT };
    c.defaults = { ...c.defaults, validity: '1d', preProduction: { enabled: true, hashes: ['sha1'] } };
    c.preSigner = { concurrency: 64, batchSize: 1000 };
  });
  const dataDir = (parse(readFileSync(config, 'utf8')) as { dataDir?: string }).dataDir ?? 'data';
  const db = new Database(join(pki.dir, dataDir, 'ocsp-hsm.sqlite'));
  const insert = db.prepare("INSERT INTO certificates (ca, serial, status, updated_at) VALUES (?, ?, 'good', 0)");
  db.transaction(() => {
    for (let i = 0; i < CERTS; i++) insert.run(ca.name, (0x1000000 + i).toString(16));
  })();
  db.close();
  process.env.SOFTHSM2_CONF = pki.softhsmConf;
  const key = { modulePath: pki.modulePath, tokenLabel: pki.tokenLabel, pinFile: pki.userPinFile, keyLabel: ca.responderKeyLabel!, certFile: ca.responderCertFile! };
  const runs: {
    rawSignsPerSecond: number; rawThreads: number; rawCores: number; rawCpuMicrosPerSign: number;
    presignPerSecond: number; ratio: number; stored: number; seconds: number; presignCpuMicrosPerResponse: number; ownCpuMicrosPerResponse: number;
    mainThreadCpuMicrosPerResponse: number; otherThreadsCpuMicrosPerResponse: number;
  }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const raw = rawSignLoop({ ...key, threads: RAW_THREADS, durationMs: RAW_SECONDS * 1000 });
    const best = raw.best;
    const r = await presign(config, childEnv(pki));
    const m = /presign: (\d+) responses stored.* in ([\d.]+) s/.exec(r.stdout)!;
    const stored = Number(m[1]);
    const seconds = Number(m[2]);
    const presignCpu = (r.cpuSeconds / stored) * 1e6;
    const run = {
      rawSignsPerSecond: best.signsPerSecond, rawThreads: best.threads, rawCores: best.cores, rawCpuMicrosPerSign: best.cpuMicrosPerSign,
      presignPerSecond: Math.round(stored / seconds), ratio: stored / seconds / best.signsPerSecond, stored, seconds,
      presignCpuMicrosPerResponse: Math.round(presignCpu), ownCpuMicrosPerResponse: Math.round(presignCpu - best.cpuMicrosPerSign),
      // The event loop (requests for signatures, encoding, the store) and the rest (session threads signing, GC helpers).
      mainThreadCpuMicrosPerResponse: Math.round((r.mainCpuSeconds / stored) * 1e6),
      otherThreadsCpuMicrosPerResponse: Math.round(((r.cpuSeconds - r.mainCpuSeconds) / stored) * 1e6),
    };
    runs.push(run);
    console.error(
      `run ${i + 1}: raw ${run.rawSignsPerSecond}/s with ${best.threads} threads on ${best.cores} cores (${best.cpuMicrosPerSign} µs CPU/sign; ` +
        `tried ${raw.tried.map((t) => `${t.threads}: ${t.signsPerSecond}/s`).join(', ')}), presign ${run.presignPerSecond}/s (${stored} in ${seconds} s, ` +
        `${run.presignCpuMicrosPerResponse} µs CPU/response: main thread ${run.mainThreadCpuMicrosPerResponse}, other threads ${run.otherThreadsCpuMicrosPerResponse}; ` +
        `${run.ownCpuMicrosPerResponse} µs beyond the signature), ratio ${run.ratio.toFixed(3)}`,
    );
  }
  const med = (f: (r: (typeof runs)[number]) => number, digits = 0) => Math.round(median(runs.map(f)) * 10 ** digits) / 10 ** digits;
  const sign = med((r) => r.rawCpuMicrosPerSign, 1);
  const own = med((r) => r.ownCpuMicrosPerResponse);
  const result = {
    medianRawSignsPerSecond: med((r) => r.rawSignsPerSecond),
    rawThreads: runs.map((r) => r.rawThreads),
    medianRawCores: med((r) => r.rawCores, 2),
    medianRawCpuMicrosPerSign: sign,
    medianPresignPerSecond: med((r) => r.presignPerSecond),
    medianPresignCpuMicrosPerResponse: med((r) => r.presignCpuMicrosPerResponse),
    /** CPU per response beyond the signature: CertID and ResponseData encoding, hashing, DER, the store row, scheduling. */
    medianOwnCpuMicrosPerResponse: own,
    medianMainThreadCpuMicrosPerResponse: med((r) => r.mainThreadCpuMicrosPerResponse),
    medianOtherThreadsCpuMicrosPerResponse: med((r) => r.otherThreadsCpuMicrosPerResponse),
    medianRatio: med((r) => r.ratio, 3),
    /** The signature's CPU over the signature's plus the response's own: the most the same cores allow. */
    cpuBoundCeilingRatio: Math.round((sign / (sign + own)) * 100) / 100,
    runs,
  };
  const report = {
    benchmark: 'presign',
    machine: machine(),
    method:
      `ocsp-hsm presign --all over ${CERTS} certificates (EC P-256, SHA-1 CertIDs, SQLite), ${SESSIONS} sessions, limits.maxConcurrent ${MAX_CONCURRENT ?? 'default (sessions)'}, concurrency 64, batchSize 1000, ${RUNS} runs, medians; ` +
      `raw loop before each run: worker threads each with its own session, C_SignInit + C_Sign synchronously in a tight loop, ${RAW_SECONDS} s at each of ${RAW_THREADS.join('/')} threads, the fastest; ` +
      `CPU = user + system time of every thread of each process (presign: sampled from /proc every 50 ms, startup included)`,
    result,
  };
  writeFileSync(join(ROOT, 'bench/results/presign.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`presign: ${result.medianPresignPerSecond}/s vs raw ${result.medianRawSignsPerSecond}/s = ratio ${result.medianRatio} (median of ${RUNS}; target 0.75)`);
  console.log(
    `cpu: raw ${sign} µs per signature; presign ${result.medianPresignCpuMicrosPerResponse} µs per response, of which ${own} µs the response's own; ` +
      `ceiling on the same cores: ${sign} / (${sign} + ${own}) = ${result.cpuBoundCeilingRatio}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
