// Benchmark (issue 4): pre-signing rate of `ocsp-hsm presign` over 100,000 certificates (one response each,
// SHA-1 CertIDs, stored in SQLite) as a ratio of the raw pkcs11js async sign loop on the same key, same run.
// usage: npm run bench -- presign [--runs N] [--certs N]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { parse } from 'yaml';
import { childEnv, CLI, createTestPki, ROOT, variantConfig } from '../native-test/support/harness';
import { machine, median } from './machine';

const { values } = parseArgs({ options: { runs: { type: 'string' }, certs: { type: 'string' }, sessions: { type: 'string' } } });
const RUNS = Number(values.runs ?? 3);
const CERTS = Number(values.certs ?? 100_000);
const SESSIONS = Number(values.sessions ?? 4);

function rawLoop(spec: object): { signsPerSecond: number; cores: number } {
  const r = spawnSync(process.execPath, [join(__dirname, 'raw-sign-loop.js'), JSON.stringify(spec)], {
    encoding: 'utf8', env: { ...process.env, UV_THREADPOOL_SIZE: '4' }, timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { signsPerSecond: number; cores: number };
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds (user + system, all threads) a live process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Runs `ocsp-hsm presign --all`; its CPU is sampled every 50 ms until it exits (startup included). */
async function presign(config: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; cpuSeconds: number }> {
  const proc = spawn(process.execPath, [CLI, 'presign', '--all', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let cpu = 0;
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const sampler = setInterval(() => {
    try {
      cpu = cpuSeconds(proc.pid!);
    } catch {
      // exited between samples
    }
  }, 50);
  const killer = setTimeout(() => proc.kill('SIGKILL'), 600_000);
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  clearInterval(sampler);
  clearTimeout(killer);
  if (code !== 0) throw new Error(`presign exited ${code}: ${stderr}`);
  return { stdout, cpuSeconds: cpu };
}

async function main(): Promise<void> {
  const pki = createTestPki([{ name: 'bench', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  const ca = pki.cas[0]!;
  const config = variantConfig(pki, 'presign', (c) => {
    c.tokens[0].sessions = SESSIONS;
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
  const raw = { modulePath: pki.modulePath, tokenLabel: pki.tokenLabel, pinFile: pki.userPinFile, keyLabel: ca.responderKeyLabel,
    keyType: 'ec', sessions: 4, durationMs: 5000, dataBytes: 250 };
  const runs: {
    rawSignsPerSecond: number; rawCores: number; rawCpuMicrosPerSign: number;
    presignPerSecond: number; ratio: number; stored: number; seconds: number; presignCpuMicrosPerResponse: number;
  }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const rawRun = rawLoop(raw);
    const rawRate = rawRun.signsPerSecond;
    const r = await presign(config, childEnv(pki));
    const m = /presign: (\d+) responses stored.* in ([\d.]+) s/.exec(r.stdout)!;
    const stored = Number(m[1]);
    const seconds = Number(m[2]);
    const run = {
      rawSignsPerSecond: Math.round(rawRate), rawCores: round2(rawRun.cores), rawCpuMicrosPerSign: Math.round((rawRun.cores / rawRate) * 1e6),
      presignPerSecond: Math.round(stored / seconds), ratio: stored / seconds / rawRate, stored, seconds,
      presignCpuMicrosPerResponse: Math.round((r.cpuSeconds / stored) * 1e6),
    };
    runs.push(run);
    console.error(`run ${i + 1}: raw ${run.rawSignsPerSecond}/s on ${run.rawCores} cores (${run.rawCpuMicrosPerSign} µs CPU/sign), presign ${run.presignPerSecond}/s (${stored} in ${seconds} s, ${run.presignCpuMicrosPerResponse} µs CPU/response), ratio ${run.ratio.toFixed(3)}`);
  }
  const cpuPerResponse = median(runs.map((r) => r.presignCpuMicrosPerResponse));
  const cores = machine().cores as number;
  const result = {
    medianRawSignsPerSecond: median(runs.map((r) => r.rawSignsPerSecond)),
    medianRawCores: median(runs.map((r) => r.rawCores)),
    medianRawCpuMicrosPerSign: median(runs.map((r) => r.rawCpuMicrosPerSign)),
    medianPresignPerSecond: median(runs.map((r) => r.presignPerSecond)),
    medianPresignCpuMicrosPerResponse: cpuPerResponse,
    medianRatio: Math.round(median(runs.map((r) => r.ratio)) * 1000) / 1000,
    /** If presign kept every core busy at its measured CPU cost per response: the most this machine allows. */
    cpuBoundCeilingRatio: round2(cores / (cpuPerResponse / 1e6) / median(runs.map((r) => r.rawSignsPerSecond))),
    runs,
  };
  const report = {
    benchmark: 'presign', machine: machine(),
    method: `ocsp-hsm presign --all over ${CERTS} certificates (EC P-256, SHA-1 CertIDs, SQLite), ${SESSIONS} sessions, ${RUNS} runs; raw loop: pkcs11js C_SignAsync on 4 sessions for 5 s before each run; CPU = user + system time of all threads of each process (presign: sampled from /proc every 50 ms, startup included)`,
    result,
  };
  writeFileSync(join(ROOT, 'bench/results/presign.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`presign: ${result.medianPresignPerSecond}/s vs raw ${result.medianRawSignsPerSecond}/s = ratio ${result.medianRatio} (median of ${RUNS})`);
  console.log(`cpu: raw loop ${result.medianRawCores} cores busy, ${result.medianRawCpuMicrosPerSign} µs per signature; presign ${cpuPerResponse} µs per response; ceiling on ${cores} cores at that cost: ratio ${result.cpuBoundCeilingRatio}`);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
