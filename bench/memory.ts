// Benchmark (memory acceptance): the daemon's RSS with 1,000,000 certificates and their stored responses
// (SQLite), cache capped at 100 MiB, while every one of those certificates is requested once (so the cache
// fills to its byte cap and evicts). Target: RSS stays under 400 MB.
// usage: npm run bench -- memory [--certs N] [--concurrency N] [--cache-mib N] [--max-entries N] [--limit-mib N]
//   [--heap-snapshot]   also write a V8 heap snapshot of the daemon after the load (to the OS temp dir)
//   [--daemon-node-options '--max-old-space-size=256']   NODE_OPTIONS for the daemon (experiments)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { parse } from 'yaml';
import { childEnv, CLI, createTestPki, ROOT, rssMiB, startResponder, variantConfig, waitFor } from '../native-test/support/harness';
import { issuerHashes, readCertificate } from '../src/pki/certificate';
import { machine } from './machine';
import type { MemoryLoadResult, MemoryLoadSpec } from './memory-load';

const { values } = parseArgs({
  options: {
    certs: { type: 'string' }, concurrency: { type: 'string' }, 'cache-mib': { type: 'string' }, 'max-entries': { type: 'string' },
    'limit-mib': { type: 'string' }, 'heap-snapshot': { type: 'boolean' }, 'daemon-node-options': { type: 'string' },
  },
});
const CERTS = Number(values.certs ?? 1_000_000);
const CONCURRENCY = Number(values.concurrency ?? 64);
const CACHE_MIB = Number(values['cache-mib'] ?? 100);
/** Default: none, as the daemon's default (the cache is bounded by bytes alone). */
const MAX_ENTRIES = values['max-entries'] ? Number(values['max-entries']) : undefined;
const LIMIT_MIB = Number(values['limit-mib'] ?? 400);
const FIRST_SERIAL = 0x1000000;
const SAMPLE_MS = 250;
/** memory-cache.ts: each entry counts as der.length + this against maxSize. */
const ENTRY_OVERHEAD_BYTES = 400;
const MiB = 2 ** 20;

/** VmRSS and its parts, and the kernel's RSS high-water mark, in MiB. */
function procMemory(pid: number): { rss: number; anon: number; file: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), hwm: kb('VmHWM') };
}

/** Scrapes /metrics once: the daemon's own view of its heap and the request / signature counters. */
async function scrape(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(url + '/metrics', { signal: AbortSignal.timeout(5000) })).text();
  const sum = (prefix: string) =>
    text.split('\n').filter((l) => l.startsWith(prefix)).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    heapUsedMiB: sum('nodejs_heap_size_used_bytes ') / MiB,
    heapTotalMiB: sum('nodejs_heap_size_total_bytes ') / MiB,
    externalMiB: sum('nodejs_external_memory_bytes ') / MiB,
    oldSpaceUsedMiB: sum('nodejs_heap_space_size_used_bytes{space="old"}') / MiB,
    requestsSuccessful: sum('ocsp_requests_total{method="POST",status="successful",'), // any source
    requestsAll: sum('ocsp_requests_total{'),
    signatures: sum('ocsp_hsm_signatures_total{'),
    cacheEntries: sum('ocsp_cache_entries '),
    cacheBytes: sum('ocsp_cache_bytes '),
  };
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

function fileMiB(f: string): number {
  return existsSync(f) ? statSync(f).size / MiB : 0;
}

function runLoad(spec: MemoryLoadSpec, onProgress: (sent: number) => void): Promise<MemoryLoadResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [join(__dirname, 'memory-load.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d: Buffer) => {
      err += d;
      const m = /progress (\d+)\n(?![\s\S]*progress)/.exec(err);
      if (m) onProgress(Number(m[1]));
      if (err.length > 100_000) err = err.slice(-10_000);
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), spec.deadlineMs + 60_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out) as MemoryLoadResult);
      else reject(new Error(`load client exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const pki = createTestPki([{ name: 'bench', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  const ca = pki.cas[0]!;
  const config = variantConfig(pki, 'memory', (c) => {
    c.tokens[0].sessions = 4;
    c.defaults = { ...c.defaults, validity: '1d', preProduction: { enabled: true, hashes: ['sha1'] } };
    c.preSigner = { concurrency: 64, batchSize: 1000 };
    c.cache = { ...(MAX_ENTRIES ? { maxEntries: MAX_ENTRIES } : {}), maxSize: CACHE_MIB * MiB };
  });
  const dataDir = (parse(readFileSync(config, 'utf8')) as { dataDir?: string }).dataDir ?? 'data';
  const dbFile = join(pki.dir, dataDir, 'ocsp-hsm.sqlite');

  // 1. Certificates: one transaction, as bench/presign.ts.
  const db = new Database(dbFile);
  const insert = db.prepare("INSERT INTO certificates (ca, serial, status, updated_at) VALUES (?, ?, 'good', 0)");
  db.transaction(() => {
    for (let i = 0; i < CERTS; i++) insert.run(ca.name, (FIRST_SERIAL + i).toString(16));
  })();
  db.close();
  console.error(`inserted ${CERTS} certificates (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

  // 2. Stored responses: the real CLI. ~8-10k/s alone on 2 cores; allow for a shared machine.
  const p = spawnSync(process.execPath, [CLI, 'presign', '--all', '--config', config], {
    encoding: 'utf8', env: childEnv(pki), timeout: 120_000 + CERTS * 2, stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (p.status !== 0) throw new Error(`presign failed (${p.status ?? p.signal}): ${p.stdout}`);
  const pm = /presign: (\d+) responses stored.* in ([\d.]+) s/.exec(p.stdout);
  if (!pm || Number(pm[1]) < CERTS) throw new Error(`presign stored too few responses: ${p.stdout}`);
  const presign = { stored: Number(pm[1]), seconds: Number(pm[2]), perSecond: Math.round(Number(pm[1]) / Number(pm[2])) };
  console.error(`presign: ${presign.stored} responses in ${presign.seconds} s (${presign.perSecond}/s)`);
  const check = new Database(dbFile, { readonly: true });
  const counts = check.prepare("SELECT (SELECT count(*) FROM certificates) AS certificates, (SELECT count(*) FROM responses) AS responses, (SELECT avg(length(der)) FROM responses) AS avgDer").get() as { certificates: number; responses: number; avgDer: number };
  check.close();
  const dbMiB = fileMiB(dbFile) + fileMiB(dbFile + '-wal');

  // 3. The daemon, and one request per certificate through it while its RSS is sampled.
  const diagDir = join(pki.dir, 'diag');
  const nodeOptions = [values['daemon-node-options'] ?? '', values['heap-snapshot'] ? `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${diagDir}` : '']
    .filter(Boolean).join(' ');
  const env: Record<string, string> = nodeOptions ? { NODE_OPTIONS: nodeOptions } : {};
  if (values['heap-snapshot']) mkdirSync(diagDir, { recursive: true });
  const responder = await startResponder(pki, { config, env });
  const pid = responder.proc.pid!;
  let exitCode = 0;
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const idle = procMemory(pid);
    const before = await scrape(responder.url);
    let sent = 0;
    let peak = { ...idle, atRequests: 0, atSeconds: 0 };
    const samples: number[] = [];
    const timeline: { s: number; sent: number; rssMiB: number; heapUsedMiB?: number; externalMiB?: number }[] = [];
    const loadStart = Date.now();
    const sampler = setInterval(() => {
      let m: ReturnType<typeof procMemory>;
      try {
        m = procMemory(pid);
      } catch {
        return; // the daemon is gone: the load client reports the failed requests
      }
      samples.push(m.rss);
      if (m.rss > peak.rss) peak = { ...m, atRequests: sent, atSeconds: (Date.now() - loadStart) / 1000 };
    }, SAMPLE_MS);
    let lastLine = 0;
    let scraping = false;
    const scraper = setInterval(() => {
      if (scraping) return;
      scraping = true;
      const s = (Date.now() - loadStart) / 1000;
      const rss = rssMiB(pid);
      scrape(responder.url)
        .then((x) => timeline.push({ s: round(s), sent, rssMiB: round(rss), heapUsedMiB: round(x.heapUsedMiB), externalMiB: round(x.externalMiB) }))
        .catch(() => timeline.push({ s: round(s), sent, rssMiB: round(rss) }))
        .finally(() => (scraping = false));
    }, 2000);
    const spec: MemoryLoadSpec = {
      url: responder.url + '/ocsp',
      nameHashHex: '', keyHashHex: '',
      firstSerial: FIRST_SERIAL, count: CERTS, concurrency: CONCURRENCY,
      deadlineMs: 60_000 + CERTS * 5, // 200/s floor: far below anything seen, but bounded
    };
    const h = issuerHashes(readCertificate(ca.caCertFile), 'sha1');
    spec.nameHashHex = h.nameHash.toString('hex');
    spec.keyHashHex = h.keyHash.toString('hex');
    let load: MemoryLoadResult;
    try {
      load = await runLoad(spec, (n) => {
        sent = n;
        if (Date.now() - lastLine >= 10_000) {
          lastLine = Date.now();
          console.error(`  ${n}/${CERTS} requests, RSS ${round(rssMiB(pid))} MiB (peak ${round(peak.rss)})`);
        }
      });
    } finally {
      clearInterval(sampler);
      clearInterval(scraper);
    }
    const loadSeconds = (Date.now() - loadStart) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const final = procMemory(pid);
    const after = await scrape(responder.url);
    if (final.rss > peak.rss) peak = { ...final, atRequests: CERTS, atSeconds: loadSeconds };
    let heapSnapshot: string | undefined;
    if (values['heap-snapshot']) {
      process.kill(pid, 'SIGUSR2');
      // The file appears at once and grows while V8 writes it: done once its size holds still for 2 s.
      let size = -1;
      let still = 0;
      const f = () => readdirSync(diagDir).find((x) => x.endsWith('.heapsnapshot'));
      const done = await waitFor(() => {
        const name = f();
        const now = name ? statSync(join(diagDir, name)).size : -1;
        still = now > 0 && now === size ? still + 1 : 0;
        size = now;
        return still >= 4;
      }, 300_000, 500);
      if (done) {
        heapSnapshot = join(tmpdir(), `ocsp-hsm-memory-${process.pid}.heapsnapshot`);
        writeFileSync(heapSnapshot, readFileSync(join(diagDir, f()!)));
      }
    }

    const failures = load.failures.transport + load.failures.http + load.failures.wrongAnswer + load.failures.notSent +
      Object.values(load.failures.ocspStatus).reduce((a, b) => a + b, 0);
    const signedDuringLoad = after.signatures - before.signatures;
    // The daemon's own count (ocsp_cache_entries), next to what memory-cache.ts's sizing rule predicts.
    const cacheBytes = CACHE_MIB * MiB;
    const perEntry = load.responseBytes.mean + ENTRY_OVERHEAD_BYTES;
    const estimatedEntries = Math.min(MAX_ENTRIES ?? Infinity, Math.floor(cacheBytes / perEntry), CERTS);
    const results = {
      limitMiB: LIMIT_MIB,
      peakRssMiB: round(peak.rss),
      peakRssMB: round((peak.rss * MiB) / 1e6),
      peakAt: { requestsSent: peak.atRequests, seconds: round(peak.atSeconds), anonMiB: round(peak.anon), fileMiB: round(peak.file) },
      kernelHighWaterMarkMiB: round(final.hwm),
      finalRssMiB: round(final.rss),
      finalRss: { anonMiB: round(final.anon), fileMiB: round(final.file) },
      idleRssBeforeLoadMiB: round(idle.rss),
      samples: samples.length,
      underLimit: peak.rss < LIMIT_MIB && final.hwm < LIMIT_MIB,
      daemonAfterLoad: {
        heapUsedMiB: round(after.heapUsedMiB), heapTotalMiB: round(after.heapTotalMiB), oldSpaceUsedMiB: round(after.oldSpaceUsedMiB),
        externalMiB: round(after.externalMiB),
      },
      cache: {
        entries: after.cacheEntries, countedMiB: round(after.cacheBytes! / MiB),
        maxSizeMiB: CACHE_MIB, maxEntries: MAX_ENTRIES, accountedBytesPerEntry: perEntry,
        estimatedEntriesAtCap: estimatedEntries,
        evictionsEstimated: Math.max(0, CERTS - estimatedEntries),
      },
      store: { certificates: counts.certificates, responses: counts.responses, avgResponseDerBytes: Math.round(counts.avgDer), dbFileMiB: round(dbMiB) },
      presign,
      load: { ...load, seconds: round(loadSeconds), signaturesDuringLoad: signedDuringLoad, daemonCountedSuccessful: after.requestsSuccessful - before.requestsSuccessful },
      failures,
      totalSeconds: round((Date.now() - t0) / 1000),
      timeline,
      ...(heapSnapshot ? { heapSnapshot } : {}),
    };
    const report = {
      benchmark: 'memory', machine: machine(),
      method:
        `${CERTS} good certificates inserted into SQLite in one transaction, one SHA-1 response each stored by \`ocsp-hsm presign --all\` ` +
        `(EC P-256 delegated responder, 4 sessions); daemon with cache {${MAX_ENTRIES ? `maxEntries: ${MAX_ENTRIES}, ` : ''}maxSize: ${CACHE_MIB}MiB}; ` +
        `one POST per certificate (all ${CERTS} distinct, in serial order, no nonce) from a Node client in its own process on 127.0.0.1, ` +
        `${CONCURRENCY} in flight on keep-alive sockets, each answer checked (successful, CertID echoed, good); daemon VmRSS sampled from ` +
        `/proc every ${SAMPLE_MS} ms during the load, plus VmHWM; final RSS 2 s after the last answer; heap figures from /metrics` +
        (values['daemon-node-options'] ? `; daemon NODE_OPTIONS: ${values['daemon-node-options']}` : ''),
      results,
    };
    writeFileSync(join(ROOT, 'bench/results/memory.json'), JSON.stringify(report, null, 2) + '\n');
    const mb = (x: number) => round((x * MiB) / 1e6, 0);
    console.log(
      `memory: peak RSS ${results.peakRssMiB} MiB (limit ${LIMIT_MIB}) = ${mb(peak.rss)} MB, final ${results.finalRssMiB} MiB, VmHWM ${results.kernelHighWaterMarkMiB} MiB; ` +
        `${load.ok}/${CERTS} ok, ${failures} failed, ${load.requestsPerSecond}/s over ${round(loadSeconds)} s; ` +
        `cache ${after.cacheEntries} entries, ${round(after.cacheBytes! / MiB)} MiB counted (${CACHE_MIB} MiB cap); heap ${round(after.heapUsedMiB)} MiB + external ${round(after.externalMiB)} MiB; ` +
        `DB ${round(dbMiB)} MiB; ${signedDuringLoad} live signatures during load`,
    );
    if (failures > 0) {
      console.error(`FAILED: ${failures} requests failed; first: ${load.firstFailure}`);
      exitCode = 1;
    }
    if (!results.underLimit) {
      console.error(`OVER LIMIT: peak RSS ${results.peakRssMiB} MiB / VmHWM ${results.kernelHighWaterMarkMiB} MiB >= ${LIMIT_MIB} MiB`);
      exitCode = 1;
    }
  } finally {
    await responder.stop();
  }
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(e.stack ?? e);
    process.exit(1);
  },
);
