// How long a revocation can wait for SQLite's write lock: the time the largest writes hold it (a pre-signer batch,
// an import of 100,000 certificates), and revocations made from a second connection while a writer stores
// pre-signer batches back to back. `npm run bench -- write-lock`; results in bench/results/write-lock.json.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/clock';
import type { StoredResponse } from '../src/store/response-store';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { machine, median } from './machine';
import { tempDir } from '../test/support/temp';

const RUNS = 3;
const IMPORT = 100_000;
const BATCH = 500; // preSigner.batchSize's default

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** The other process: imports, then stores pre-signer batches back to back until killed; prints each batch's time. */
async function writer(file: string): Promise<void> {
  const store = new SqliteStore(file, systemClock);
  const serials = Array.from({ length: IMPORT }, (_, i) => (0x100000 + i).toString(16));
  process.stdout.write('importing\n');
  const importMs = await timed(() => store.putCertificates(serials.map((serial) => ({ ca: 'b', serial, status: 'good' as const, notAfter: new Date('2030-01-01Z') }))));
  process.stdout.write(`import ${importMs}\n`);
  for (let from = 0; ; from = (from + BATCH) % IMPORT) {
    const batch: StoredResponse[] = [];
    for (const serial of serials.slice(from, from + BATCH)) {
      const rec = (await store.getCertificate('b', serial))!;
      const now = new Date();
      batch.push({ ca: 'b', serial, hash: 'sha256', certIdDer: Buffer.alloc(80, 1), der: Buffer.alloc(1100, 2), producedAt: now, thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000), final: false, statusVersion: rec.version!, signer: 'bench' });
    }
    process.stdout.write(`batch ${await timed(() => store.putResponses(batch))}\n`);
  }
}

async function run(): Promise<Record<string, number>> {
  const file = join(tempDir('wlock'), 'ocsp-hsm.sqlite');
  new SqliteStore(file, systemClock).close(); // schema first: the two processes must not both migrate
  const child = spawn(process.execPath, [__filename, 'writer', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  while (!lines.includes('importing')) await sleep(5);
  await sleep(100);
  const ca = new SqliteStore(file, systemClock); // `ocsp-hsm revoke`, while the other process writes
  // One revocation behind the import's transaction (a serial not imported yet: it is recorded as new).
  const behindImportMs = await timed(() => ca.revoke('b', 'ff', new Date(), 'keyCompromise'));
  while (!lines.some((l) => l.startsWith('batch'))) await sleep(5);
  const waits: number[] = [];
  const end = performance.now() + 3000;
  for (let i = 0; performance.now() < end; i++) {
    const serial = (0x100000 + ((i * 487) % IMPORT)).toString(16);
    waits.push(await timed(() => ca.revoke('b', serial, new Date(), 'keyCompromise')));
    await sleep(2);
  }
  child.kill();
  await ca.close();
  waits.sort((x, y) => x - y);
  const batchMs = lines.filter((l) => l.startsWith('batch')).map((l) => Number(l.split(' ')[1]));
  const r1 = (n: number) => Math.round(n * 10) / 10;
  return {
    importMs: Math.round(Number(lines.find((l) => l.startsWith('import '))!.split(' ')[1])),
    revocationBehindImportMs: Math.round(behindImportMs),
    batchWriteMedianMs: r1(median(batchMs)),
    batchWriteMaxMs: r1(Math.max(...batchMs)),
    batchesDuringRevocations: batchMs.length,
    revocationMedianMs: r1(median(waits)),
    revocationP99Ms: r1(waits[Math.floor(waits.length * 0.99)]!),
    revocationMaxMs: r1(waits.at(-1)!),
    revocations: waits.length,
  };
}

async function main(): Promise<void> {
  const runs: Record<string, number>[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await run());
  const keys = Object.keys(runs[0]!);
  const medians = Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]!))]));
  const result = { machine: machine(), importCertificates: IMPORT, batchSize: BATCH, runs, medians };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(join(__dirname, '../../bench/results'), { recursive: true });
  writeFileSync(join(__dirname, '../../bench/results/write-lock.json'), JSON.stringify(result, null, 2) + '\n');
}

if (process.argv[2] === 'writer') void writer(process.argv[3]!);
else void main();
