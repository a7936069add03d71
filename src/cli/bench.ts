// `ocsp-hsm bench`: a stress test of a running responder (as EJBCA's `ejbcaClientToolBox.sh OCSP stress`).
import { parseDuration } from '../config/units';
import type { HashName } from '../ocsp/oids';
import { readCertificate } from '../pki/certificate';
import { runBench } from '../stress/bench';
import type { Method } from '../stress/load-generator';
import { formatReport } from '../stress/report';
import { RequestBuilder } from '../stress/request-builder';
import { serialsFromFile, serialsFromStore } from '../stress/targets';
import { caConfig, RecordsContext, withStore } from './records';
import { UsageError } from './usage';

/** The options only `bench` takes, merged into main's parser. */
export const BENCH_OPTIONS = {
  url: { type: 'string' },
  duration: { type: 'string' },
  connections: { type: 'string' },
  method: { type: 'string' },
  nonce: { type: 'boolean' },
  certs: { type: 'string' },
  sample: { type: 'string' },
  hash: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export interface BenchArgs {
  ca?: string | undefined;
  url?: string | undefined;
  duration?: string | undefined;
  connections?: string | undefined;
  method?: string | undefined;
  nonce?: boolean | undefined;
  certs?: string | undefined;
  sample?: string | undefined;
  hash?: string | undefined;
  timeout?: string | undefined;
  json?: boolean | undefined;
}

/** Prints the report; resolves to whether the run passed (something succeeded, every sample verified). */
export async function bench(ctx: RecordsContext, args: BenchArgs, extra: string[]): Promise<boolean> {
  if (extra.length > 0) throw new UsageError(`bench takes no arguments (got "${extra[0]}")`);
  const url = parseUrl(args.url);
  const durationMs = durationOption('--duration', args.duration ?? '30s', 24 * 3_600_000);
  const timeoutMs = durationOption('--timeout', args.timeout ?? '10s', 600_000);
  const connections = intOption('--connections', args.connections ?? '16', 1, 1024);
  const sample = intOption('--sample', args.sample ?? '100', 0, 100_000);
  const method = (args.method ?? 'POST').toUpperCase();
  if (method !== 'GET' && method !== 'POST') throw new UsageError(`--method: "${args.method}" is not GET or POST`);
  const hash = args.hash ?? 'sha1';
  if (hash !== 'sha1' && hash !== 'sha256') throw new UsageError(`--hash: "${hash}" is not sha1 or sha256`);
  const ca = caConfig(ctx, args.ca);

  const caCert = readCertificate(ctx.loaded.path(ca.certificate));
  const serials = args.certs ? serialsFromFile(args.certs, caCert) : await withStore(ctx, (s) => serialsFromStore(s, ca.name));
  if (serials.length === 0) throw new Error(`CA "${ca.name}" has no certificates in the store: import some, or name them with --certs FILE`);

  const report = await runBench({
    url,
    method: method as Method,
    connections,
    durationMs,
    timeoutMs,
    sample,
    builder: new RequestBuilder(caCert, hash as HashName, !!args.nonce),
    serials,
    caCert,
    nonce: !!args.nonce,
    clock: ctx.clock,
  });
  if (args.json) ctx.out(JSON.stringify({ url: url.href, ca: ca.name, method, connections, hash, nonce: !!args.nonce, certificates: serials.length, ...report }));
  else {
    const source = args.certs ? args.certs : 'the store';
    ctx.out(`${method} ${url.href}, CA ${ca.name}, ${connections} connections, ${serials.length} certificates from ${source}, ${hash} CertIDs${args.nonce ? ', nonces' : ''}`);
    formatReport(report).forEach((l) => ctx.out(l));
  }
  if (report.succeeded === 0) ctx.out('no request succeeded');
  return report.succeeded > 0 && report.verification.failures.length === 0;
}

function parseUrl(text: string | undefined): URL {
  if (!text) throw new UsageError('--url URL is required (the responder, e.g. http://127.0.0.1:8080)');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url: "${text}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url: "${text}" is not an http or https URL`);
  return url;
}

function durationOption(name: string, text: string, maxMs: number): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (e) {
    throw new UsageError(`${name}: ${(e as Error).message}`);
  }
  if (ms <= 0 || ms > maxMs) throw new UsageError(`${name}: "${text}" is out of range (more than 0, at most ${maxMs / 1000} s)`);
  return ms;
}

function intOption(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`${name}: "${text}" is not a whole number from ${min} to ${max}`);
  return n;
}
