// Child-process load client of the memory benchmark: one POST per certificate, serials first..first+count-1 in
// order, each a single SHA-1 CertID without nonce, `concurrency` in flight on keep-alive sockets to 127.0.0.1.
// Every answer must be a successful OCSPResponse (status byte) that carries the request's CertID followed by
// certStatus good. Progress lines ("progress DONE") go to stderr; the JSON result goes to stdout.
// usage: node memory-load.js '<json MemoryLoadSpec>'
import { Agent, request } from 'node:http';
import { encodeCertId } from '../src/ocsp/cert-id';
import { TAG, tlv } from '../src/ocsp/tlv';

export interface MemoryLoadSpec {
  url: string;
  nameHashHex: string;
  keyHashHex: string;
  firstSerial: number;
  count: number;
  concurrency: number;
  /** The whole pass is abandoned (counted as failures) after this long. */
  deadlineMs: number;
}

export interface MemoryLoadResult {
  sent: number;
  ok: number;
  failures: { transport: number; http: number; ocspStatus: Record<string, number>; wrongAnswer: number; notSent: number };
  firstFailure?: string;
  elapsedMs: number;
  requestsPerSecond: number;
  responseBytes: { min: number; max: number; mean: number };
  latencyMs: { p50: number; p99: number; max: number };
}

/** Content offset and length of the DER element at `at` (definite lengths only). */
function header(b: Buffer, at: number): { tag: number; start: number; len: number } {
  const tag = b[at]!;
  const first = b[at + 1]!;
  if (first < 0x80) return { tag, start: at + 2, len: first };
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[at + 2 + i]!;
  return { tag, start: at + 2 + n, len };
}

/** 'ok', or what is wrong with the answer. */
function check(body: Buffer, certId: Buffer): string {
  if (body.length < 5) return 'short';
  const outer = header(body, 0);
  if (outer.tag !== TAG.sequence || outer.start + outer.len !== body.length) return 'not an OCSPResponse';
  if (body[outer.start] !== TAG.enumerated || body[outer.start + 1] !== 1) return 'no responseStatus';
  const status = body[outer.start + 2]!;
  if (status !== 0) return `status ${status}`;
  // SingleResponse ::= SEQUENCE { certID, certStatus [0] IMPLICIT NULL (good) = 80 00, thisUpdate, ... }
  const at = body.indexOf(certId);
  if (at < 0) return 'CertID not echoed';
  if (body[at + certId.length] !== 0x80 || body[at + certId.length + 1] !== 0x00) return 'certStatus not good';
  return 'ok';
}

export async function runMemoryLoad(spec: MemoryLoadSpec): Promise<MemoryLoadResult> {
  const nameHash = Buffer.from(spec.nameHashHex, 'hex');
  const keyHash = Buffer.from(spec.keyHashHex, 'hex');
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const r: MemoryLoadResult = {
    sent: 0, ok: 0, failures: { transport: 0, http: 0, ocspStatus: {}, wrongAnswer: 0, notSent: 0 },
    elapsedMs: 0, requestsPerSecond: 0, responseBytes: { min: Infinity, max: 0, mean: 0 }, latencyMs: { p50: 0, p99: 0, max: 0 },
  };
  const fail = (kind: 'transport' | 'http' | 'wrongAnswer', why: string) => {
    r.failures[kind]++;
    r.firstFailure ??= why;
  };
  // Latencies in 0.1 ms buckets up to 10 s (a histogram: a million samples need no array of a million).
  const hist = new Uint32Array(100_001);
  let bodyBytes = 0;
  let next = 0;
  const start = performance.now();
  const deadline = start + spec.deadlineMs;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const serial = (spec.firstSerial + i).toString(16);
      const certId = encodeCertId('sha1', nameHash, keyHash, serial);
      // OCSPRequest { TBSRequest { requestList { Request { reqCert } } } }
      const body = tlv(TAG.sequence, tlv(TAG.sequence, tlv(TAG.sequence, tlv(TAG.sequence, certId))));
      const t0 = performance.now();
      r.sent++;
      const req = request(spec.url, {
        method: 'POST', agent, timeout: 10_000,
        headers: { 'content-type': 'application/ocsp-request', 'content-length': body.length },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => {
          fail('transport', `serial ${serial}: ${e.message}`);
          resolve();
        });
        res.on('end', () => {
          const answer = Buffer.concat(chunks);
          hist[Math.min(hist.length - 1, Math.round((performance.now() - t0) * 10))]!++;
          if (res.statusCode !== 200) fail('http', `serial ${serial}: HTTP ${res.statusCode}`);
          else {
            const verdict = check(answer, certId);
            if (verdict === 'ok') {
              r.ok++;
              bodyBytes += answer.length;
              r.responseBytes.min = Math.min(r.responseBytes.min, answer.length);
              r.responseBytes.max = Math.max(r.responseBytes.max, answer.length);
            } else if (verdict.startsWith('status ')) {
              r.failures.ocspStatus[verdict.slice(7)] = (r.failures.ocspStatus[verdict.slice(7)] ?? 0) + 1;
              r.firstFailure ??= `serial ${serial}: OCSP ${verdict}`;
            } else fail('wrongAnswer', `serial ${serial}: ${verdict}`);
          }
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout after 10 s')));
      req.on('error', (e) => {
        fail('transport', `serial ${serial}: ${e.message}`);
        resolve();
      });
      req.end(body);
    });
  const worker = async () => {
    while (next < spec.count && performance.now() < deadline) await one(next++);
  };
  const progress = setInterval(() => process.stderr.write(`progress ${r.sent}\n`), 1000);
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  clearInterval(progress);
  agent.destroy();
  r.failures.notSent = spec.count - r.sent;
  r.elapsedMs = Math.round(performance.now() - start);
  r.requestsPerSecond = Math.round(r.sent / (r.elapsedMs / 1000));
  r.responseBytes.mean = r.ok ? Math.round(bodyBytes / r.ok) : 0;
  if (!r.ok) r.responseBytes.min = 0;
  const total = hist.reduce((a, b) => a + b, 0);
  const q = (p: number) => {
    let seen = 0;
    for (let i = 0; i < hist.length; i++) if ((seen += hist[i]!) >= p * total) return i / 10;
    return 0;
  };
  let maxBucket = 0;
  for (let i = 0; i < hist.length; i++) if (hist[i]) maxBucket = i;
  r.latencyMs = { p50: q(0.5), p99: q(0.99), max: maxBucket / 10 };
  return r;
}

if (require.main === module) {
  runMemoryLoad(JSON.parse(process.argv[2]!) as MemoryLoadSpec).then(
    (r) => process.stdout.write(JSON.stringify(r)),
    (e: Error) => {
      process.stderr.write(String(e.stack ?? e));
      process.exit(1);
    },
  );
}
