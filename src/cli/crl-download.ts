// `ocsp-hsm crl-download`: the CRL download service run once; and the CA list the daemon schedules it for.
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import { CrlDownloadCa, CrlDownloadService, StepOutcome } from '../ingest/crl-download';
import { describeCrl } from '../ingest/crl-apply';
import { readCertificate } from '../pki/certificate';
import { openStore } from './store';
import { UsageError } from './usage';

/** The CAs with a `crl` section, their certificates loaded. */
export function crlDownloadCas(loaded: LoadedConfig): CrlDownloadCa[] {
  return loaded.config.cas.flatMap((c) => (c.crl ? [{ name: c.name, certificate: readCertificate(loaded.path(c.certificate)), crl: c.crl }] : []));
}

export async function crlDownload(
  ctx: { loaded: LoadedConfig; clock: Clock; out: (line: string) => void },
  o: { ca?: string | undefined; force: boolean },
): Promise<void> {
  const cas = crlDownloadCas(ctx.loaded);
  const names = o.ca?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names ?? []) {
    if (!cas.some((c) => c.name === n)) {
      const configured = ctx.loaded.config.cas.some((c) => c.name === n);
      throw new UsageError(`--ca: ${configured ? `CA "${n}" has no crl section (cas[].crl.urls)` : `no CA named "${n}"`} in ${ctx.loaded.file}`);
    }
  }
  if (cas.length === 0) throw new UsageError(`no CA in ${ctx.loaded.file} has a crl section (cas[].crl.urls)`);
  const quiet = { info: () => undefined, warn: () => undefined };
  const store = await openStore(ctx.loaded, ctx.clock);
  let failed = 0;
  try {
    const service = new CrlDownloadService({ store, cas, clock: ctx.clock, log: quiet });
    for (const r of await service.runOnce({ ...(names ? { cas: names } : {}), force: o.force })) {
      for (const [kind, step] of [['full', r.full], ['delta', r.delta]] as const) {
        if (!step) continue;
        if (step.status === 'failed') failed++;
        for (const line of describeStep(step)) ctx.out(`${r.ca}: ${kind} CRL: ${line}`);
      }
    }
  } finally {
    await store.close();
  }
  if (failed > 0) throw new Error(`${failed} CRL download${failed > 1 ? 's' : ''} failed; nothing was changed by ${failed > 1 ? 'them' : 'it'}`);
}

function describeStep(s: StepOutcome): string[] {
  switch (s.status) {
    case 'applied':
      return s.applied.map((a) => {
        const r = a.result;
        return `${describeCrl(a.crl)} from ${s.url}, ${a.crl.entries.length} entries: inserted ${r.inserted}, updated ${r.updated}, unchanged ${r.unchanged}`;
      });
    case 'not-due':
      return [`not due before ${s.nextUpdate.toISOString()} (--force downloads anyway)`];
    case 'stale':
      return [`ignored: ${s.message}`];
    case 'failed':
      return [`failed: ${s.message}`];
  }
}
