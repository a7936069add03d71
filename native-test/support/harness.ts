// Native test harness: a fresh SoftHSM2 PKI in a temp dir, the daemon as a child process on a free port.
import assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { parse, stringify } from 'yaml';
import { OID } from '../../src/ocsp/oids';
import type { LoadResult, LoadSpec } from './load';
import type { CaSpec } from '../../src/demo/pki-builder';
import { tempDir } from '../../test/support/temp';

export const ROOT = resolve(__dirname, '../../..');
export const CLI = join(ROOT, 'bin/ocsp-hsm');

export interface TestLeaf {
  file: string;
  serial: string;
}
export interface TestCa {
  name: string;
  caCertFile: string;
  caKeyLabel: string;
  responderCertFile?: string;
  responderKeyLabel?: string;
  good: TestLeaf;
  revoked: TestLeaf;
  unissued: TestLeaf;
}
export interface TestPki {
  dir: string;
  softhsmConf: string;
  modulePath: string;
  tokenLabel: string;
  userPinFile: string;
  configFile: string;
  revokedAt: string;
  cas: TestCa[];
}

export function createTestPki(specs: CaSpec[]): TestPki {
  const dir = tempDir('native');
  const r = spawnSync(process.execPath, [join(__dirname, 'build-pki.js'), dir, JSON.stringify(specs)], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`build-pki failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as TestPki;
}

/** Writes a variant of the PKI's config (edited by `edit`) next to it and returns its path. */
export function variantConfig(pki: TestPki, name: string, edit: (cfg: Record<string, any>) => void): string {
  const cfg = parse(readFileSync(pki.configFile, 'utf8')) as Record<string, any>;
  edit(cfg);
  const file = join(pki.dir, `${name}.yaml`);
  writeFileSync(file, stringify(cfg));
  return file;
}

export interface Responder {
  url: string;
  port: number;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/** The publishing API listener's port, from the daemon's log line. */
export function publishingPort(r: Responder): number {
  const m = /"port":(\d+),"auth":"[^"]+","msg":"publishing API listening"/.exec(r.output());
  if (!m) throw new Error(`no publishing listener in:\n${r.output()}`);
  return Number(m[1]);
}

export function childEnv(pki: Pick<TestPki, 'softhsmConf'>, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, SOFTHSM2_CONF: pki.softhsmConf, ...extra };
}

/** Starts `ocsp-hsm serve` and resolves once it logs "listening" (rejects with its output otherwise). */
export function startResponder(pki: Pick<TestPki, 'softhsmConf' | 'configFile'>, opts: { config?: string; env?: Record<string, string> } = {}): Promise<Responder> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', opts.config ?? pki.configFile], {
    env: childEnv(pki, opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`responder did not start within 20s:\n${out}`));
    }, 20_000);
    const onData = () => {
      const m = /"port":(\d+),"pathPrefix":[^}]*"msg":"listening"/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      const port = Number(m[1]);
      resolvePromise({
        url: `http://127.0.0.1:${port}`,
        port,
        proc,
        output: () => `${out}${proc.signalCode ? `\n(ended by ${proc.signalCode})` : ''}`,
        stop: async () => {
          if (proc.exitCode === null) proc.kill('SIGTERM');
          // Longer than the daemon's own server.shutdownTimeout (10s): its graceful stop is never cut short here.
          const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
          const code = await exited;
          clearTimeout(t);
          return code;
        },
      });
    };
    proc.stdout!.on('data', onData);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`responder exited with ${code} before listening:\n${out}`));
    });
  });
}

/** Runs the CLI to completion (bounded), returning exit status and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 60_000, input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI to completion (bounded) without blocking this process, returning exit status and output. */
export function runCliAsync(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (e, stdout, stderr) =>
      resolvePromise({ status: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr }),
    );
  });
}

/** openssl ocsp against a URL: CA file as trust anchor (never -noverify); returns stdout+stderr. */
export function opensslQuery(ca: TestCa, url: string, certs: string[], extra: string[] = []): string {
  const args = ['ocsp', ...extra, '-issuer', ca.caCertFile, '-CAfile', ca.caCertFile, '-url', url, '-timeout', '10'];
  for (const c of certs) args.push('-cert', c);
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000 });
  return `${r.stdout}${r.stderr}`;
}

/** A DER request for one certificate (or several) carrying a 16-byte nonce, and where the nonce bytes sit. */
export function nonceTemplate(ca: TestCa, cert: string | string[], sha256 = false): { der: Buffer; nonceOffset: number } {
  const f = join(tempDir('tmpl'), 'req.der');
  const certs = (Array.isArray(cert) ? cert : [cert]).flatMap((c) => ['-cert', c]);
  const r = spawnSync('openssl', ['ocsp', ...(sha256 ? ['-sha256'] : []), '-issuer', ca.caCertFile, ...certs, '-no_nonce', '-reqout', f]);
  if (r.status !== 0) throw new Error(String(r.stderr));
  const req = pkijs.OCSPRequest.fromBER(readFileSync(f));
  const marker = Buffer.alloc(16, 0x5a);
  req.tbsRequest.requestExtensions = [
    new pkijs.Extension({ extnID: OID.ocspNonce, critical: false, extnValue: new asn1js.OctetString({ valueHex: marker }).toBER() }),
  ];
  const der = Buffer.from(req.toSchema(true).toBER());
  return { der, nonceOffset: der.indexOf(marker) };
}

/** Runs the load generator in its own process (so it does not share our event loop) and returns its stats. */
export function runLoadProcess(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, [join(__dirname, 'load.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), spec.durationMs + 30_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(JSON.parse(out) as LoadResult);
      else reject(new Error(`load generator exited ${code}: ${err}`));
    });
  });
}

/** Resident set size of a process in MiB, from /proc. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function readyz(url: string): Promise<number> {
  try {
    return (await fetch(url + '/readyz', { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

/** Polls until `check` holds or `ms` pass; returns whether it held. */
/**
 * Asserts that the daemon logs a line matching `re` within `ms`. The daemon writes a line after the change it
 * reports (a CRL applied, a token recovered), and the line reaches this process through a pipe: an effect seen
 * over HTTP can come before it.
 */
export async function assertLogged(r: Responder, re: RegExp, ms = 10_000): Promise<void> {
  if (!(await waitFor(() => re.test(r.output()), ms))) assert.match(r.output(), re);
}

export async function waitFor(check: () => Promise<boolean> | boolean, ms: number, every = 50): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, every));
  }
  return false;
}

/** Scrapes /metrics and returns the value of one sample line (name with labels as printed), or 0. */
export async function metric(url: string, sample: string): Promise<number> {
  const text = await (await fetch(url + '/metrics', { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}
