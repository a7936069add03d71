// Child-process entry: builds a PKI on a fresh SoftHSM2 token in <dir> and writes config.yaml + store.
// Run in its own process because SoftHSM2 reads SOFTHSM2_CONF once per process.
// usage: node build-pki.js <dir> '<json CaSpec[]>'
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { systemClock } from '../../src/clock';
import { loadConfig } from '../../src/config/load';
import { buildPki, CaSpec, pkiConfig } from '../../src/demo/pki-builder';
import { finalizeModules } from '../../src/hsm/module';
import { openStore } from '../../src/cli/store';

async function main(): Promise<void> {
  const [dir, specJson] = process.argv.slice(2);
  const specs = JSON.parse(specJson!) as CaSpec[];
  const pki = await buildPki(dir!, `test-${process.pid}`, specs);
  finalizeModules();
  const configFile = join(dir!, 'config.yaml');
  // One process: these tests read that process's metrics, memory and logs. The daemon of several serving processes
  // (the default, one per core) is tested in workers.test.ts, and by the demo's tests and bring-your-own-ca.
  writeFileSync(configFile, stringify(pkiConfig(pki, { port: 0, pathPrefix: '/ocsp', workers: 1 })));
  const store = await openStore(loadConfig(configFile), systemClock);
  const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
  for (const ca of pki.cas) {
    await store.putCertificates([
      { ca: ca.name, serial: ca.good.serial, status: 'good' },
      { ca: ca.name, serial: ca.revoked.serial, status: 'revoked', revokedAt, reason: 'keyCompromise' },
    ]);
  }
  await store.close();
  const strip = (l: { file: string; serial: string }) => ({ file: l.file, serial: l.serial });
  process.stdout.write(
    JSON.stringify({
      ...pki,
      configFile,
      revokedAt: revokedAt.toISOString(),
      cas: pki.cas.map((c) => ({ ...c, good: strip(c.good), revoked: strip(c.revoked), unissued: strip(c.unissued) })),
    }),
  );
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e));
  process.exit(1);
});
