// How long `?wait=all` adds to a publishing request: three responders on SoftHSM2 sharing one throwaway PostgreSQL
// (one a primary with two serving processes), status changes posted to one of them with ?wait=none (the reference,
// same run) and ?wait=all, alternately; medians of 3 runs. `npm run bench -- publish-wait`; results in
// bench/results/publish-wait.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv, createTestPki, publishingPort, Responder, runCli, startResponder, variantConfig } from '../native-test/support/harness';
import { postgresCluster } from '../native-test/support/postgres';
import { machine, median } from './machine';

const RUNS = 3;
const POSTS = 20;
const TOKEN = 'be9c'.repeat(16);

async function main(): Promise<void> {
  const pg = await postgresCluster();
  const url = pg.url(await pg.createDatabase());
  const pki = createTestPki([{ name: 'benchca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
  const ca = pki.cas[0]!;
  writeFileSync(join(pki.dir, 'publish.token'), TOKEN + '\n', { mode: 0o600 });
  const configs = ['a', 'b', 'c'].map((n) =>
    variantConfig(pki, `bench-${n}`, (c) => {
      c.store = { url };
      if (n === 'a') c.publishing = { host: '127.0.0.1', port: 0, auth: { tokenFile: 'publish.token' } };
      if (n === 'c') c.server = { ...c.server, workers: 2 };
    }),
  );
  const imported = runCli(['import', 'certs', '--ca', ca.name, ca.good.file, '--config', configs[0]!], childEnv(pki));
  if (imported.status !== 0) throw new Error(imported.stderr);
  const nodes: Responder[] = await Promise.all(configs.map((config) => startResponder(pki, { config })));
  try {
    const api = `http://127.0.0.1:${publishingPort(nodes[0]!)}/v1/cas/${ca.name}/revocations`;
    let hold = true;
    const post = async (wait: 'none' | 'all') => {
      const body = { serial: ca.good.serial, revokedAt: new Date(Date.now() - 60_000).toISOString(), reason: hold ? 'certificateHold' : 'removeFromCRL' };
      hold = !hold;
      const t0 = performance.now();
      const r = await fetch(`${api}?wait=${wait}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const json = (await r.json()) as { wait?: { applied: boolean; waitedMs: number; responders: number } };
      if (r.status !== 200 || (wait === 'all' && !json.wait?.applied)) throw new Error(`${r.status}: ${JSON.stringify(json)}`);
      return { ms: performance.now() - t0, waitedMs: json.wait?.waitedMs, responders: json.wait?.responders };
    };
    const runs: { noneMs: number; allMs: number; waitedMs: number; allP90Ms: number; responders: number }[] = [];
    for (let run = 0; run < RUNS; run++) {
      const none: number[] = [];
      const all: number[] = [];
      const waited: number[] = [];
      let responders = 0;
      for (let i = 0; i < POSTS; i++) {
        none.push((await post('none')).ms);
        const a = await post('all');
        all.push(a.ms);
        waited.push(a.waitedMs!);
        responders = a.responders!;
      }
      all.sort((x, y) => x - y);
      runs.push({ noneMs: median(none), allMs: median(all), waitedMs: median(waited), allP90Ms: all[Math.floor(all.length * 0.9)]!, responders });
    }
    const result = {
      machine: machine(),
      posts: POSTS,
      runs,
      median: {
        noneMs: median(runs.map((r) => r.noneMs)),
        allMs: median(runs.map((r) => r.allMs)),
        waitedMs: median(runs.map((r) => r.waitedMs)),
        allP90Ms: median(runs.map((r) => r.allP90Ms)),
      },
    };
    mkdirSync(join(__dirname, '../../bench/results'), { recursive: true });
    writeFileSync(join(__dirname, '../../bench/results/publish-wait.json'), JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result.median) + '\n');
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  },
);
