// Benchmark (issue 4): pre-signing rate of `ocsp-hsm presign` over 100,000 certificates (one response each,
// SHA-1 CertIDs, stored in SQLite) as a ratio of the raw pkcs11js async sign loop on the same key, same run.
// usage: npm run bench -- presign [--runs N] [--certs N]
import { spawnSync } from 'node:child_process';
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

function rawLoop(spec: object): number {
  const r = spawnSync(process.execPath, [join(__dirname, 'raw-sign-loop.js'), JSON.stringify(spec)], {
    encoding: 'utf8', env: { ...process.env, UV_THREADPOOL_SIZE: '4' }, timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { signsPerSecond: number }).signsPerSecond;
}

function main(): void {
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
  const runs: { rawSignsPerSecond: number; presignPerSecond: number; ratio: number; stored: number; seconds: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const rawRate = rawLoop(raw);
    const r = spawnSync(process.execPath, [CLI, 'presign', '--all', '--config', config], { encoding: 'utf8', env: childEnv(pki), timeout: 600_000 });
    if (r.status !== 0) throw new Error(r.stderr);
    const m = /presign: (\d+) responses stored.* in ([\d.]+) s/.exec(r.stdout)!;
    const stored = Number(m[1]);
    const seconds = Number(m[2]);
    runs.push({ rawSignsPerSecond: Math.round(rawRate), presignPerSecond: Math.round(stored / seconds), ratio: stored / seconds / rawRate, stored, seconds });
    console.error(`run ${i + 1}: raw ${Math.round(rawRate)}/s, presign ${Math.round(stored / seconds)}/s (${stored} in ${seconds} s), ratio ${(stored / seconds / rawRate).toFixed(3)}`);
  }
  const result = {
    medianRawSignsPerSecond: median(runs.map((r) => r.rawSignsPerSecond)),
    medianPresignPerSecond: median(runs.map((r) => r.presignPerSecond)),
    medianRatio: Math.round(median(runs.map((r) => r.ratio)) * 1000) / 1000,
    runs,
  };
  const report = {
    benchmark: 'presign', machine: machine(),
    method: `ocsp-hsm presign --all over ${CERTS} certificates (EC P-256, SHA-1 CertIDs, SQLite), ${SESSIONS} sessions, ${RUNS} runs; raw loop: pkcs11js C_SignAsync on 4 sessions for 5 s before each run`,
    result,
  };
  writeFileSync(join(ROOT, 'bench/results/presign.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`presign: ${result.medianPresignPerSecond}/s vs raw ${result.medianRawSignsPerSecond}/s = ratio ${result.medianRatio} (median of ${RUNS})`);
}

main();
