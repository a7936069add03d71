// One stress run: requests for random serials under load, every answer counted, a spread sample verified after.
import type { Clock } from '../clock';
import type { LoadedCertificate } from '../pki/certificate';
import { Exchange, Method, runLoad } from './load-generator';
import { BenchReport, BenchStats, SampleFailure } from './report';
import { RequestBuilder } from './request-builder';
import { Reservoir } from './reservoir';
import { summarizeResponse } from './response-summary';
import { verifyResponse } from './verifier';

export interface BenchOptions {
  url: URL;
  method: Method;
  connections: number;
  durationMs: number;
  timeoutMs: number;
  /** How many successful responses to verify in full. */
  sample: number;
  builder: RequestBuilder;
  serials: readonly string[];
  caCert: LoadedCertificate;
  /** Whether requests carry nonces (the verification then reports whether they came back). */
  nonce: boolean;
  clock: Clock;
  random?: () => number;
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const random = o.random ?? Math.random;
  const stats = new BenchStats();
  // Unsigned answers (tryLater, ...) are counted, not sampled: there is no signature to check.
  const samples = new Reservoir<Exchange>(o.sample, random);
  const onExchange = (e: Exchange) => {
    let summary;
    if (e.body && e.httpStatus === 200) {
      try {
        summary = summarizeResponse(e.body);
      } catch (err) {
        summary = (err as Error).message;
      }
    }
    stats.record(e, summary);
    if (e.body && e.httpStatus === 200 && (typeof summary === 'string' || summary?.responseStatus === 'successful')) samples.offer(e);
  };
  const next = () => o.builder.build(o.serials[Math.floor(random() * o.serials.length)]!);
  const { elapsedMs } = await runLoad({ ...o, next, onExchange });

  // Verified after the load, so that pkijs decoding does not slow the run it measures.
  const now = o.clock.now();
  const failures: SampleFailure[] = [];
  let nonceEchoed = 0;
  for (const e of samples.items()) {
    const v = verifyResponse(e.request, e.body!, o.caCert, now);
    if (v.problems.length > 0) failures.push({ serial: e.request.serial, problems: v.problems });
    if (v.nonceEchoed) nonceEchoed++;
  }
  const sampled = samples.items().length;
  return stats.report(elapsedMs, {
    sampled,
    valid: sampled - failures.length,
    failures,
    ...(o.nonce ? { nonceEchoed } : {}),
  });
}
