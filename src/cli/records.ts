// CLI commands that read or change certificate status: import index, import certs, import crl, revoke, status.
import { readFileSync } from 'node:fs';
import type { LoadedConfig } from '../config/load';
import { parseReason, ReasonName } from '../ocsp/reasons';
import { parseSerial } from '../ocsp/serial';
import { applyCrls, describeCrl, fullBeforeDelta, VerifiedCrl } from '../ingest/crl-apply';
import { recordedLate } from '../compliance/late-answers';
import { mtimeOf, readIndexFile } from '../ingest/index-import';
import { readCertificate, readCertificates } from '../pki/certificate';
import { issuedBy } from '../pki/chain';
import { crlBlocks, readCrl } from '../pki/crl';
import type { CertificateRecord, ImportResult } from '../store/status-store';
import type { Clock } from '../clock';
import type { Store } from '../store/response-store';
import { openStore } from './store';
import { UsageError } from './usage';

export interface RecordsContext {
  loaded: LoadedConfig;
  clock: Clock;
  out: (line: string) => void;
}

export function caConfig(ctx: RecordsContext, name: string | undefined) {
  if (!name) throw new UsageError('--ca NAME is required');
  const ca = ctx.loaded.config.cas.find((c) => c.name === name);
  if (!ca) {
    throw new UsageError(`--ca: no CA named "${name}" in ${ctx.loaded.file} (have: ${ctx.loaded.config.cas.map((c) => c.name).join(', ')})`);
  }
  return ca;
}

export async function withStore<T>(ctx: RecordsContext, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(ctx.loaded, ctx.clock);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function report(ctx: RecordsContext, r: ImportResult): void {
  ctx.out(`inserted ${r.inserted}, updated ${r.updated}, unchanged ${r.unchanged}`);
  if (r.keptRevoked > 0) {
    ctx.out(`kept ${r.keptRevoked} final revocations as stored: the input said good, certificateHold, or another reason or date (README "Status rules")`);
  }
}

export async function importIndex(ctx: RecordsContext, caName: string | undefined, files: string[]): Promise<void> {
  const ca = caConfig(ctx, caName);
  if (files.length !== 1) throw new UsageError('import index takes exactly one index.txt file');
  // Read and checked before the store is opened: a bad file touches nothing.
  const index = readIndexFile(files[0]!, ca.name);
  await withStore(ctx, async (s) => {
    const r = await s.putCertificates(index.records);
    report(ctx, r);
    const late = recordedLate(r.inserted, mtimeOf(index.version), ctx.clock.now());
    if (late > 0 && (ca.compliance ?? ctx.loaded.config.defaults.compliance) === 'cabf') {
      ctx.out(`warning: ${late} certificates were new to the store more than 15 minutes after ${files[0]} was written: answered unknown until now, later than BR 4.9.9 allows (compliance: cabf)`);
    }
  });
}

export async function importCerts(ctx: RecordsContext, caName: string | undefined, files: string[], profile?: string): Promise<void> {
  const ca = caConfig(ctx, caName);
  if (files.length === 0) throw new UsageError('import certs needs at least one certificate file');
  // The CA under its current key or any previous one (key renewal): all share its certificate records.
  const issuers = [ca.certificate, ...ca.previousKeys.map((k) => k.certificate)].map((f) => readCertificate(ctx.loaded.path(f)));
  const records: CertificateRecord[] = [];
  for (const file of files) {
    for (const c of readCertificates(file)) {
      if (!issuers.some((issuer) => issuedBy(c, issuer))) {
        throw new Error(`${file}: certificate with serial ${c.x509.serialNumber} was not issued by CA "${ca.name}"`);
      }
      records.push({
        ca: ca.name,
        serial: parseSerial(c.x509.serialNumber),
        status: 'good',
        notAfter: new Date(c.x509.validTo),
        ...(profile ? { profile } : {}),
      });
    }
  }
  await withStore(ctx, async (s) => report(ctx, await s.putCertificates(records)));
}

/** Every CRL is read and verified before anything is written: one bad file and nothing changes. */
export async function importCrl(ctx: RecordsContext, caName: string | undefined, files: string[]): Promise<void> {
  const ca = caConfig(ctx, caName);
  if (files.length === 0) throw new UsageError('import crl needs at least one CRL file (DER or PEM)');
  const issuer = readCertificate(ctx.loaded.path(ca.certificate));
  const crls: VerifiedCrl[] = [];
  for (const file of files) {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    const blocks = crlBlocks(data, file);
    for (const [i, der] of blocks.entries()) {
      const where = blocks.length > 1 ? `${file} (CRL ${i + 1})` : file;
      crls.push({ crl: await readCrl(der, issuer, where), where });
    }
  }
  const applied = await withStore(ctx, (s) => applyCrls(s, ca.name, fullBeforeDelta(crls)));
  const total: ImportResult = { inserted: 0, updated: 0, unchanged: 0, keptRevoked: 0 };
  for (const a of applied) {
    const r = a.result;
    ctx.out(`${a.where}: ${describeCrl(a.crl)}, ${a.crl.entries.length} entries: inserted ${r.inserted}, updated ${r.updated}, unchanged ${r.unchanged}`);
    for (const k of Object.keys(total) as (keyof ImportResult)[]) total[k] += r[k];
  }
  report(ctx, total);
}

export async function revoke(
  ctx: RecordsContext,
  a: { ca?: string | undefined; serial?: string | undefined; reason?: string | undefined; date?: string | undefined },
): Promise<void> {
  const ca = caConfig(ctx, a.ca);
  if (!a.serial) throw new UsageError('--serial HEX is required');
  if (!a.reason) throw new UsageError('--reason REASON is required');
  const serial = usage(() => parseSerial(a.serial!), '--serial');
  const reason: ReasonName = usage(() => parseReason(a.reason!), '--reason');
  const now = ctx.clock.now();
  const date = a.date ? new Date(a.date) : now;
  if (Number.isNaN(date.getTime())) throw new UsageError(`--date: "${a.date}" is not an ISO 8601 date`);
  if (date.getTime() > now.getTime() + 60_000) throw new UsageError(`--date: ${date.toISOString()} is in the future`);
  if (reason === 'removeFromCRL') {
    throw new UsageError('--reason removeFromCRL releases a hold, it is no revocation: publish it (POST .../revocations) or import a delta CRL');
  }
  const r = await withStore(ctx, (s) => s.revoke(ca.name, serial, date, reason));
  const record = r.record!;
  const stored = `${record.revokedAt?.toISOString()} (${record.reason ?? 'no reason'})`;
  // keyCompromise is recorded, at the earlier of the two dates (Baseline Requirements 7.2.2); nothing else moves a final revocation.
  const escalated = reason === 'keyCompromise' && record.reason === reason;
  if (r.outcome === 'keptRevoked' && !escalated) {
    throw new Error(`${ca.name} serial ${serial} stays revoked at ${stored}: a revocation other than certificateHold is final (README "Status rules")`);
  }
  if (r.outcome === 'unchanged') ctx.out(`${ca.name} serial ${serial} was already revoked at ${stored}: nothing changed`);
  else if (r.outcome === 'keptRevoked') ctx.out(`${ca.name} serial ${serial} is revoked at ${stored}: the earlier keyCompromise date is kept`);
  else ctx.out(`revoked ${ca.name} serial ${serial} at ${stored}${r.created ? '; serial was not known before' : ''}`);
}

export async function status(ctx: RecordsContext, caName: string | undefined, serialText: string | undefined): Promise<void> {
  const ca = caConfig(ctx, caName);
  if (!serialText) throw new UsageError('--serial HEX is required');
  const serial = usage(() => parseSerial(serialText), '--serial');
  const rec = await withStore(ctx, (s) => s.getCertificate(ca.name, serial));
  if (!rec) {
    ctx.out(`${ca.name} serial ${serial}: not in the store (answered "unknown")`);
    return;
  }
  const parts = [`${ca.name} serial ${serial}: ${rec.status}`];
  if (rec.status === 'revoked') parts.push(`at ${rec.revokedAt?.toISOString()}`, `reason ${rec.reason ?? '(none)'}`);
  if (rec.notAfter) parts.push(`notAfter ${rec.notAfter.toISOString()}`);
  if (rec.profile) parts.push(`profile ${rec.profile}`);
  ctx.out(parts.join(', '));
}

function usage<T>(fn: () => T, flag: string): T {
  try {
    return fn();
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}
