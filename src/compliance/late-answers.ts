// BR 4.9.9: a certificate or precertificate must be answered other than "unknown" no more than 15 minutes after it
// is first published. A certificate the store learns of later was answered unknown past that: counted when it is
// first recorded, with the publication time its writer knows (publishing API `publishedAt`, index.txt's mtime).
import { ANSWER_WITHIN_MS } from './cabf-timing';

/** Certificates `inserted` (new to the store) at `recordedAt` that were published more than 15 minutes before. */
export function recordedLate(inserted: number, publishedAt: Date | undefined, recordedAt: Date): number {
  if (inserted === 0 || publishedAt === undefined) return 0;
  return recordedAt.getTime() - publishedAt.getTime() > ANSWER_WITHIN_MS ? inserted : 0;
}

/** Where a certificate was learnt of: the publishing API or a followed index.txt. */
export type LateVia = 'publishing' | 'index';

/** Told of certificates recorded late; a CA not under compliance: cabf is not counted (compliance-metrics.ts). */
export interface LateAnswers {
  recordedLate(ca: string, via: LateVia, n: number): void;
}
