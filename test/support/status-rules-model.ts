// A reference model of the status rules (README "Status rules"), written plainly from the README's table and apart
// from src/store/status-rules.ts, for the property tests to hold the stores to.
import { isDeepStrictEqual } from 'node:util';
import type { ReasonName } from '../../src/ocsp/reasons';
import type { CertificateRecord, ImportResult } from '../../src/store/status-store';
import type { WriteOutcome } from '../../src/store/status-rules';

/** Revocation dates and notAfter as small day numbers: counterexamples read short, and dates meet often. */
export const revokedOn = (day: number): Date => new Date(Date.UTC(2026, 0, 1 + day, 12));
export const expiresOn = (day: number): Date => new Date(Date.UTC(2027, 0, 1 + day));
const DAY = 86_400_000;
export const HOLD: ReasonName = 'certificateHold';

/** A certificate's record as the model keeps it. */
export interface ModelRecord {
  status: 'good' | 'revoked';
  day?: number;
  reason?: ReasonName;
  notAfter?: number;
  profile?: string;
}

/** One certificate's part of a write: a good (issuance), a release (removeFromCRL), or a revocation. */
export type ModelWrite =
  | { serial: string; kind: 'good'; notAfter?: number; profile?: string }
  | { serial: string; kind: 'release' }
  | { serial: string; kind: 'revoke'; day: number; reason?: ReasonName; notAfter?: number };

/** What one write did, by the table: `kept` when a final revocation refused it (in whole or in part). */
export interface Applied {
  write: ModelWrite;
  before?: ModelRecord;
  after?: ModelRecord;
  outcome: 'inserted' | 'updated' | 'unchanged';
  kept: boolean;
}

export const isFinal = (r: ModelRecord): boolean => r.status === 'revoked' && r.reason !== HOLD;
export const isHold = (r: ModelRecord): boolean => r.status === 'revoked' && r.reason === HOLD;

/** The table, one branch per cell: rows are what is stored, columns what the write says. */
export function applyWrite(old: ModelRecord | undefined, w: ModelWrite): Applied {
  if (!old) {
    // A removeFromCRL for an unknown serial leaves it unknown.
    if (w.kind === 'release') return { write: w, outcome: 'unchanged', kept: false };
    const { serial: _, kind, ...rest } = w;
    return { write: w, after: tidy({ status: kind === 'good' ? 'good' : 'revoked', ...rest }), outcome: 'inserted', kept: false };
  }
  let status: ModelRecord = { status: old.status, day: old.day, reason: old.reason };
  let kept = false;
  if (w.kind !== 'revoke') {
    // A good or a removeFromCRL: releases a hold, leaves good as it is, is refused by a final revocation.
    if (isFinal(old)) kept = true;
    else if (isHold(old)) status = { status: 'good' };
  } else if (w.reason === HOLD) {
    // A repeated hold keeps the first hold's date.
    if (isFinal(old)) kept = true;
    else if (old.status === 'good') status = { status: 'revoked', day: w.day, reason: HOLD };
  } else if (!isFinal(old)) {
    status = { status: 'revoked', day: w.day, reason: w.reason };
  } else if (w.reason === 'keyCompromise') {
    // Baseline Requirements 7.2.2: keyCompromise is recorded, at the earlier date.
    status = { status: 'revoked', day: Math.min(old.day!, w.day), reason: 'keyCompromise' };
    kept = w.day > old.day!;
  } else if (w.reason !== old.reason || w.day !== old.day) {
    kept = true;
  }
  // notAfter and profile follow the latest write that names them, whatever happens to the status.
  const named: { notAfter?: number; profile?: string } = w.kind === 'release' ? {} : w;
  const after = tidy({ ...status, notAfter: named.notAfter ?? old.notAfter, profile: named.profile ?? old.profile });
  return { write: w, before: old, after, outcome: same(old, after) ? 'unchanged' : 'updated', kept };
}

/** An import's counts: every write is inserted, updated or unchanged; keptRevoked is counted besides. */
export function counts(applied: Applied[]): ImportResult {
  const n = (f: (a: Applied) => boolean) => applied.filter(f).length;
  return {
    inserted: n((a) => a.outcome === 'inserted'),
    updated: n((a) => a.outcome === 'updated'),
    unchanged: n((a) => a.outcome === 'unchanged'),
    keptRevoked: n((a) => a.kept),
  };
}

/** The one outcome the CLI's revoke and the publishing API report: a refusal first. */
export const outcomeOf = (a: Applied): WriteOutcome => (a.kept ? 'keptRevoked' : a.outcome);

export const same = (a: ModelRecord | undefined, b: ModelRecord | undefined): boolean => isDeepStrictEqual(a && tidy(a), b && tidy(b));

/** A stored record in the model's terms. */
export function view(r: CertificateRecord | undefined): ModelRecord | undefined {
  if (!r) return undefined;
  const days = (d: Date | undefined, from: Date) => (d ? (d.getTime() - from.getTime()) / DAY : undefined);
  return tidy({ status: r.status, day: days(r.revokedAt, revokedOn(0)), reason: r.reason, notAfter: days(r.notAfter, expiresOn(0)), profile: r.profile });
}

function tidy(r: ModelRecord): ModelRecord {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as ModelRecord;
}
