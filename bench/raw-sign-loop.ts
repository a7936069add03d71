// The raw signing reference: worker threads, each with its own session, making C_SignInit + C_Sign synchronously
// in a tight loop on one key, nothing else. Tried with each thread count asked for; the fastest is the reference.
// usage: node raw-sign-loop.js '<json {modulePath, tokenLabel, pinFile, keyLabel, certFile, threads: [n...], durationMs}>'
// prints {"best": {threads, signsPerSecond, cores}, "tried": [...]}
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { BenchKeySpec, openBenchSession } from './bench-key';

export interface RawLoopSpec extends BenchKeySpec {
  threads: number[];
  durationMs: number;
}

export interface RawRun {
  threads: number;
  signsPerSecond: number;
  /** CPU of the whole process (every thread, where SoftHSM2 signs) as cores busy. */
  cores: number;
  cpuMicrosPerSign: number;
}

/** Shared between the threads: [0] stop flag, [1 + i] signatures of thread i. */
type Counters = Int32Array;

function signLoop(spec: BenchKeySpec, counters: Counters, index: number): void {
  const { p11, session, key, mechanism, inputBytes, outLen } = openBenchSession(spec);
  const input = randomBytes(inputBytes);
  const out = Buffer.alloc(outLen);
  parentPort!.postMessage('ready');
  // Atomics.wait blocks this thread until the main thread starts every loop at once.
  Atomics.wait(counters, 0, 0);
  while (Atomics.load(counters, 0) === 1) {
    p11.C_SignInit(session, { mechanism }, key);
    p11.C_Sign(session, input, out);
    Atomics.add(counters, 1 + index, 1);
  }
  p11.C_CloseSession(session);
}

async function measure(spec: RawLoopSpec, threads: number): Promise<RawRun> {
  const counters = new Int32Array(new SharedArrayBuffer(4 * (1 + threads)));
  // One at a time: SoftHSM2 answers C_Initialize and C_GetTokenInfo made at once from several threads with
  // CKR_GENERAL_ERROR now and then.
  const workers: Worker[] = [];
  for (let i = 0; i < threads; i++) {
    const w = new Worker(__filename, { workerData: { spec, counters, index: i } });
    workers.push(w);
    await once(w, 'message');
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  Atomics.store(counters, 0, 1);
  Atomics.notify(counters, 0);
  await new Promise((r) => setTimeout(r, spec.durationMs));
  Atomics.store(counters, 0, 2);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  let count = 0;
  for (let i = 0; i < threads; i++) count += Atomics.load(counters, 1 + i);
  await Promise.all(workers.map((w) => once(w, 'exit')));
  const cores = (cpu.user + cpu.system) / 1e6 / seconds;
  return { threads, signsPerSecond: Math.round(count / seconds), cores: Math.round(cores * 100) / 100, cpuMicrosPerSign: Math.round((cores / (count / seconds)) * 1e7) / 10 };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]!) as RawLoopSpec;
  const tried: RawRun[] = [];
  for (const n of spec.threads) tried.push(await measure(spec, n));
  const best = tried.reduce((a, b) => (b.signsPerSecond > a.signsPerSecond ? b : a));
  process.stdout.write(JSON.stringify({ best, tried }));
}

export interface RawLoopResult {
  best: RawRun;
  tried: RawRun[];
}

/** Runs the loop in a process of its own, so nothing of the caller shares its threads. */
export function rawSignLoop(spec: RawLoopSpec): RawLoopResult {
  const r = spawnSync(process.execPath, [__filename, JSON.stringify(spec)], {
    encoding: 'utf8', timeout: spec.threads.length * spec.durationMs + 60_000,
  });
  if (r.status !== 0) throw new Error(`raw-sign-loop exited ${r.status ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout) as RawLoopResult;
}

if (!isMainThread) {
  const d = workerData as { spec: BenchKeySpec; counters: Counters; index: number };
  signLoop(d.spec, d.counters, d.index);
} else if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(String(e?.stack ?? e));
    process.exit(1);
  });
}
