// Child-process load generator for native tests: a bounded loop of unique-nonce OCSP POSTs (or GETs) to 127.0.0.1,
// checking every successful answer (nonce echoed, expected status, signature valid). Prints JSON stats.
// usage: node load.js '<json LoadSpec>'
import { verify } from 'node:crypto';
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import * as pkijs from 'pkijs';

export interface LoadSpec {
  url: string;
  durationMs: number;
  concurrency: number;
  /**
   * DER OCSPRequest whose 16-byte nonce sits at `nonceOffset`; each request gets fresh nonce bytes. With
   * `nonceOffset` -1 the request is sent as it is (no nonce: answerable from the cache) and no nonce is checked.
   */
  templateBase64: string;
  nonceOffset: number;
  localAddress?: string;
  /** Expected certStatus tag of every successful response: 0 good, 1 revoked, 2 unknown. */
  expectStatusTag: number;
  responderPublicKeyPem: string;
  hash: 'sha256' | 'sha384';
  maxRequests?: number;
  /** POST (the default) or GET (the request base64 in the path, RFC 6960 appendix A.1). */
  method?: 'GET' | 'POST';
  /** A response header naming who answered (a load balancer's backend): results are also counted per value. */
  nodeHeader?: string;
}

export interface LoadResult {
  sent: number;
  byStatus: Record<string, number>;
  transportErrors: number;
  wrongAnswers: number;
  elapsedMs: number;
  latencyMs: Record<string, { p50: number; p99: number; max: number }>;
  /** With `nodeHeader`: byStatus per value of that header ("-" when it was missing). */
  byNode?: Record<string, Record<string, number>>;
}

// Unsigned error answers are these five bytes; no need to parse them. An HTTP error that carries no OCSP response
// at all (a load balancer's 502/503 page) is counted as "http<code>": a failed request, not a wrong answer.
const ERROR_PREFIX = Buffer.from([0x30, 0x03, 0x0a, 0x01]);

function check(body: Buffer, nonce: Buffer, spec: LoadSpec): number | 'wrong' {
  if (body.length === 5 && body.subarray(0, 4).equals(ERROR_PREFIX)) return body[4]!;
  const ocsp = pkijs.OCSPResponse.fromBER(body);
  const status = ocsp.responseStatus.valueBlock.valueDec;
  if (status !== 0) return status;
  const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
  const ext = basic.tbsResponseData.responseExtensions?.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2');
  const echoed = ext && Buffer.from(ext.extnValue.valueBlock.valueHexView).subarray(2);
  if (spec.nonceOffset >= 0 && (!echoed || !echoed.equals(nonce))) return 'wrong';
  if (basic.tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber !== spec.expectStatusTag) return 'wrong';
  const ok = verify(spec.hash, Buffer.from(basic.tbsResponseData.tbsView), spec.responderPublicKeyPem, Buffer.from(basic.signature.valueBlock.valueHexView));
  return ok ? 0 : 'wrong';
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const template = Buffer.from(spec.templateBase64, 'base64');
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const latencies: Record<string, number[]> = {};
  const result: LoadResult = { sent: 0, byStatus: {}, transportErrors: 0, wrongAnswers: 0, elapsedMs: 0, latencyMs: {} };
  const start = performance.now();
  const end = start + spec.durationMs;
  const max = spec.maxRequests ?? Infinity;
  const one = () =>
    new Promise<void>((resolve) => {
      const body = Buffer.from(template);
      const nonce = randomBytes(16);
      if (spec.nonceOffset >= 0) nonce.copy(body, spec.nonceOffset);
      const t0 = performance.now();
      result.sent++;
      const get = spec.method === 'GET';
      const url = get ? `${spec.url.replace(/\/$/, '')}/${encodeURIComponent(body.toString('base64'))}` : spec.url;
      const req = request(url, {
        method: get ? 'GET' : 'POST', agent, timeout: 10_000,
        headers: get ? {} : { 'content-type': 'application/ocsp-request', 'content-length': body.length },
        ...(spec.localAddress ? { localAddress: spec.localAddress } : {}),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let status: number | 'wrong' | `http${number}`;
          if (res.statusCode !== 200 && res.headers['content-type'] !== 'application/ocsp-response') status = `http${res.statusCode ?? 0}`;
          else {
            try {
              status = check(Buffer.concat(chunks), nonce, spec);
            } catch {
              status = 'wrong';
            }
          }
          if (status === 'wrong') result.wrongAnswers++;
          const key = String(status);
          result.byStatus[key] = (result.byStatus[key] ?? 0) + 1;
          if (spec.nodeHeader) {
            const node = ((result.byNode ??= {})[String(res.headers[spec.nodeHeader.toLowerCase()] ?? '-')] ??= {});
            node[key] = (node[key] ?? 0) + 1;
          }
          (latencies[key] ??= []).push(performance.now() - t0);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        result.transportErrors++;
        resolve();
      });
      req.end(get ? undefined : body);
    });
  const worker = async () => {
    while (performance.now() < end && result.sent < max) await one();
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  result.elapsedMs = performance.now() - start;
  for (const [k, v] of Object.entries(latencies)) {
    v.sort((a, b) => a - b);
    const q = (p: number) => Math.round(v[Math.min(v.length - 1, Math.floor(p * v.length))]! * 100) / 100;
    result.latencyMs[k] = { p50: q(0.5), p99: q(0.99), max: q(1) };
  }
  agent.destroy();
  return result;
}

if (require.main === module) {
  runLoad(JSON.parse(process.argv[2]!) as LoadSpec).then((r) => process.stdout.write(JSON.stringify(r)));
}
