// Counts a stress run's exchanges and prints the figures: rate, latency percentiles, status breakdowns, errors.
import type { Exchange } from './load-generator';
import type { ResponseSummary } from './response-summary';

export interface SampleFailure {
  serial: string;
  problems: string[];
}

export interface VerificationResult {
  sampled: number;
  valid: number;
  failures: SampleFailure[];
  /** With --nonce: sampled responses that echoed it (the others left it out, which RFC 9654 allows). */
  nonceEchoed?: number;
}

export interface BenchReport {
  requests: number;
  /** HTTP 200 carrying a successful OCSP response. */
  succeeded: number;
  seconds: number;
  requestsPerSecond: number;
  /** Of requests that got an HTTP answer. */
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  httpStatus: Record<string, number>;
  responseStatus: Record<string, number>;
  certStatus: Record<string, number>;
  errors: Record<string, number>;
  verification: VerificationResult;
}

export class BenchStats {
  private requests = 0;
  private succeeded = 0;
  private latencies: number[] = [];
  private readonly httpStatus: Record<string, number> = {};
  private readonly responseStatus: Record<string, number> = {};
  private readonly certStatus: Record<string, number> = {};
  private readonly errors: Record<string, number> = {};

  /** `summary` is the decoded response (of an HTTP 200), or the reason it could not be decoded. */
  record(e: Exchange, summary: ResponseSummary | string | undefined): void {
    this.requests++;
    if (e.error !== undefined) return bump(this.errors, e.error);
    this.latencies.push(e.latencyMs);
    bump(this.httpStatus, String(e.httpStatus));
    // It got an HTTP answer, so it is not an error of the transport; the sampled verification says what is wrong.
    if (typeof summary === 'string') return bump(this.responseStatus, 'undecodable');
    if (!summary) return;
    bump(this.responseStatus, summary.responseStatus);
    for (const s of summary.certStatuses) bump(this.certStatus, s);
    if (e.httpStatus === 200 && summary.responseStatus === 'successful') this.succeeded++;
  }

  report(elapsedMs: number, verification: VerificationResult): BenchReport {
    const sorted = Float64Array.from(this.latencies).sort();
    const seconds = elapsedMs / 1000;
    return {
      requests: this.requests,
      succeeded: this.succeeded,
      seconds: round(seconds, 3),
      requestsPerSecond: round(seconds > 0 ? this.requests / seconds : 0, 1),
      latencyMs: {
        p50: round(percentile(sorted, 50), 2),
        p95: round(percentile(sorted, 95), 2),
        p99: round(percentile(sorted, 99), 2),
        max: round(sorted.length ? sorted[sorted.length - 1]! : 0, 2),
      },
      httpStatus: { ...this.httpStatus },
      responseStatus: { ...this.responseStatus },
      certStatus: { ...this.certStatus },
      errors: { ...this.errors },
      verification,
    };
  }
}

/** Nearest-rank percentile of ascending values (0 when there are none). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

// Printed failures per run: enough to see the pattern, not a screenful per sample.
const FAILURES_SHOWN = 10;

/** The human-readable report, one line per figure. */
export function formatReport(r: BenchReport): string[] {
  const v = r.verification;
  const lines = [
    `requests     ${r.requests} in ${r.seconds.toFixed(1)} s: ${r.requestsPerSecond.toFixed(1)} requests/s (${r.succeeded} successful)`,
    `latency ms   p50 ${r.latencyMs.p50}  p95 ${r.latencyMs.p95}  p99 ${r.latencyMs.p99}  max ${r.latencyMs.max}`,
    `HTTP status  ${breakdown(r.httpStatus)}`,
    `OCSP status  ${breakdown(r.responseStatus)}`,
    `cert status  ${breakdown(r.certStatus)}`,
    `errors       ${breakdown(r.errors)}`,
    `sampled ${v.sampled} responses: ${v.valid} signatures valid${v.failures.length ? `, ${v.failures.length} failed verification` : ''}`,
  ];
  if (v.nonceEchoed !== undefined) lines.push(`nonce echoed in ${v.nonceEchoed} of ${v.sampled} sampled responses`);
  for (const f of v.failures.slice(0, FAILURES_SHOWN)) lines.push(`  serial ${f.serial}: ${f.problems.join('; ')}`);
  if (v.failures.length > FAILURES_SHOWN) lines.push(`  ... and ${v.failures.length - FAILURES_SHOWN} more`);
  return lines;
}

function breakdown(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([k, n]) => `${k}: ${n}`).join(', ') : 'none';
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
