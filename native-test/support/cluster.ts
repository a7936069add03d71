// A cluster for native tests: one PostgreSQL, N real responders on one SoftHSM2 token sharing it, and HAProxy in
// front on 127.0.0.1; helpers to kill -9 a responder, start it again, and ask through HAProxy (GET and POST,
// every answer verified by openssl against the CA certificate).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaSpec } from '../../src/demo/pki-builder';
import { tempDir } from '../../test/support/temp';
import { childEnv, createTestPki, opensslQuery, Responder, runCli, startResponder, TestCa, TestLeaf, TestPki, variantConfig } from './harness';
import { Haproxy, NODE_HEADER, STEER_HEADER } from './haproxy';
import { freePort, postgresCluster } from './postgres';

export interface ClusterOptions {
  /** Responders behind HAProxy (default 3). */
  nodes?: number;
  /** The CAs of the test PKI (default: one, EC P-256 CA and responder key). */
  cas?: CaSpec[];
  /** Edits the configuration all nodes share (server.port is set per node afterwards). */
  edit?: (cfg: Record<string, any>) => void;
  /** Every node gets a publishing API (127.0.0.1, a free port) accepting this bearer token. */
  publishingToken?: string;
}

export interface ClusterNode {
  /** HAProxy's name for it: n1, n2, ... */
  name: string;
  port: number;
  config: string;
  responder: Responder | undefined;
}

export type CertStatusName = 'good' | 'revoked' | 'unknown';

/** One answer through HAProxy: who answered, what openssl made of it. */
export interface ClusterAnswer {
  node: string;
  httpStatus: number;
  /** The certificate's status, from a response openssl verified; undefined when it did not verify. */
  status: CertStatusName | undefined;
  /** openssl's output. */
  openssl: string;
}

export class TestCluster {
  private haproxyProc: Haproxy | undefined;
  private readonly pidFile: string;

  private constructor(
    readonly pki: TestPki,
    readonly dbUrl: string,
    readonly config: string,
    readonly nodes: ClusterNode[],
    private readonly dir: string,
    private readonly edit: (cfg: Record<string, any>) => void,
  ) {
    this.pidFile = join(dir, 'pids');
  }

  get ca(): TestCa {
    return this.pki.cas[0]!;
  }

  get haproxy(): Haproxy {
    if (!this.haproxyProc) throw new Error('HAProxy is not running');
    return this.haproxyProc;
  }

  /** HAProxy's OCSP URL (the responders' path prefix). */
  get url(): string {
    return `${this.haproxy.url}/ocsp`;
  }

  /**
   * Starts everything; on any failure stops what was started and rethrows. Each CA's good and revoked leaves
   * are recorded in PostgreSQL (through the CLI) before the responders start.
   */
  static async start(o: ClusterOptions = {}): Promise<TestCluster> {
    const pg = await postgresCluster();
    const dbUrl = pg.url(await pg.createDatabase());
    const pki = createTestPki(o.cas ?? [{ name: 'clu', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    if (o.publishingToken) writeFileSync(join(pki.dir, 'publish.token'), o.publishingToken + '\n', { mode: 0o600 });
    const edit = (c: Record<string, any>) => {
      c.store = { url: dbUrl };
      if (o.publishingToken) c.publishing = { host: '127.0.0.1', port: 0, auth: { tokenFile: 'publish.token' } };
      // HAProxy adds X-Forwarded-For (option forwardfor): the HSM's fair share is per client behind it.
      c.server.trustedProxies = ['127.0.0.1'];
      o.edit?.(c);
    };
    const config = variantConfig(pki, 'cluster', edit);
    const dir = tempDir('cluster');
    const nodes: ClusterNode[] = Array.from({ length: o.nodes ?? 3 }, (_, i) => ({ name: `n${i + 1}`, port: 0, config: '', responder: undefined }));
    const c = new TestCluster(pki, dbUrl, config, nodes, dir, edit);
    try {
      for (const ca of pki.cas) {
        for (const args of [
          ['import', 'certs', '--ca', ca.name, ca.good.file, ca.revoked.file],
          ['revoke', '--ca', ca.name, '--serial', ca.revoked.serial, '--reason', 'keyCompromise'],
        ]) {
          const r = c.cli(args);
          if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
        }
      }
      c.watchdog();
      // One after the other: responders starting together share the 2 cores with PostgreSQL and the migrations.
      for (const n of nodes) await c.startNode(n);
      c.haproxyProc = await Haproxy.start(dir, nodes.map((n) => ({ name: n.name, port: n.port })));
      c.recordPids();
      if (!(await c.haproxy.waitForStatus(Object.fromEntries(nodes.map((n) => [n.name, 'UP'])), 15_000))) {
        throw new Error(`HAProxy does not see every node up: ${JSON.stringify([...(await c.haproxy.stats())])}\n${c.haproxy.output()}`);
      }
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  /** The CLI with the cluster's configuration (status writes go to the shared PostgreSQL). */
  cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
    return runCli([...args, '--config', this.config], childEnv(this.pki));
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** kill -9 a node's responder and waits until it is gone. */
  async kill(name: string): Promise<void> {
    const r = this.node(name).responder;
    if (!r) throw new Error(`${name} is not running`);
    const gone = new Promise<void>((resolve) => (r.proc.exitCode !== null || r.proc.signalCode !== null ? resolve() : r.proc.once('exit', () => resolve())));
    r.proc.kill('SIGKILL');
    await gone;
    this.node(name).responder = undefined;
    this.recordPids();
  }

  /** Starts a node's responder again on its port (HAProxy's health checks bring it back into rotation). */
  async restart(name: string): Promise<Responder> {
    const n = this.node(name);
    if (n.responder) throw new Error(`${name} is running`);
    const r = await startResponder(this.pki, { config: n.config });
    n.responder = r;
    this.recordPids();
    return r;
  }

  /**
   * Asks through HAProxy about one certificate of `o.ca` (default: the first CA; SHA-1 CertID, no nonce), by GET or
   * POST, steered to `o.node` when given (round robin otherwise); the answer is verified by `openssl ocsp -respin`
   * against the CA certificate.
   */
  async query(leaf: TestLeaf, o: { method: 'GET' | 'POST'; node?: string; ca?: TestCa }): Promise<ClusterAnswer> {
    const ca = o.ca ?? this.ca;
    const reqFile = join(this.dir, `req-${process.hrtime.bigint()}.der`);
    const made = spawnSync('openssl', ['ocsp', '-issuer', ca.caCertFile, '-cert', leaf.file, '-no_nonce', '-reqout', reqFile], { encoding: 'utf8', timeout: 10_000 });
    if (made.status !== 0) throw new Error(`openssl -reqout: ${made.stderr}`);
    const der = readFileSync(reqFile);
    const headers: Record<string, string> = o.node ? { [STEER_HEADER]: o.node } : {};
    const res =
      o.method === 'GET'
        ? await fetch(`${this.url}/${encodeURIComponent(der.toString('base64'))}`, { headers, signal: AbortSignal.timeout(10_000) })
        : await fetch(this.url, { method: 'POST', body: der, headers: { ...headers, 'content-type': 'application/ocsp-request' }, signal: AbortSignal.timeout(10_000) });
    const respFile = `${reqFile}.resp`;
    writeFileSync(respFile, Buffer.from(await res.arrayBuffer()));
    const v = spawnSync('openssl', ['ocsp', '-respin', respFile, '-issuer', ca.caCertFile, '-cert', leaf.file, '-CAfile', ca.caCertFile], { encoding: 'utf8', timeout: 10_000 });
    rmSync(reqFile, { force: true });
    rmSync(respFile, { force: true });
    const out = `${v.stdout}${v.stderr}`;
    const status = /Response verify OK/.test(out) ? (/: (good|revoked|unknown)\b/.exec(v.stdout)?.[1] as CertStatusName | undefined) : undefined;
    return { node: res.headers.get(NODE_HEADER) ?? '-', httpStatus: res.status, status, openssl: out };
  }

  /** openssl's own client (POST) through HAProxy, steered to `node` when given: its whole output. */
  opensslQuery(certs: string[], node?: string, ca: TestCa = this.ca): string {
    return opensslQuery(ca, this.url, certs, node ? ['-header', `${STEER_HEADER}=${node}`] : []);
  }

  /** Stops HAProxy and every responder (SIGTERM, then SIGKILL), whatever state they are in; returns their exit codes. */
  async stop(): Promise<{ haproxy: number | null | undefined; responders: Record<string, number | null> }> {
    const responders: Record<string, number | null> = {};
    const haproxy = await this.haproxyProc?.stop();
    await Promise.all(
      this.nodes.map(async (n) => {
        if (!n.responder) return;
        responders[n.name] = await n.responder.stop();
        n.responder = undefined;
      }),
    );
    rmSync(this.pidFile, { force: true }); // the watchdog ends without killing anything
    return { haproxy, responders };
  }

  private async startNode(n: ClusterNode): Promise<void> {
    let lastError: Error | undefined;
    // A fixed port per node, kept across restarts (HAProxy's config names it); another process may take it
    // between the probe and the bind: try a few.
    for (let attempt = 0; attempt < 3; attempt++) {
      n.port = await freePort();
      n.config = variantConfig(this.pki, `cluster-${n.name}`, (c) => {
        this.edit(c);
        c.server.port = n.port;
        // Its heartbeat and `cluster status` name it as HAProxy does.
        c.cluster = { ...c.cluster, name: n.name };
      });
      try {
        n.responder = await startResponder(this.pki, { config: n.config });
        this.recordPids();
        return;
      } catch (e) {
        lastError = e as Error;
        if (!/EADDRINUSE/.test(lastError.message)) throw lastError;
      }
    }
    throw lastError!;
  }

  private recordPids(): void {
    const pids = [this.haproxyProc?.pid, ...this.nodes.map((n) => n.responder?.proc.pid)].filter((p) => p !== undefined);
    writeFileSync(this.pidFile, pids.join('\n') + '\n');
  }

  // Should this process be killed outright (no `after`), a detached shell kills what the cluster runs once it is gone
  // (and removes its dir);
  // a stopped cluster removes the PID file first, and the shell ends without killing anything.
  private watchdog(): void {
    this.recordPids();
    const f = this.pidFile;
    const rm = process.env.OCSP_HSM_KEEP_TEST_DIRS ? ':' : `rm -rf "${this.dir}"`;
    const script = `while kill -0 ${process.pid} 2>/dev/null && [ -e "${f}" ]; do sleep 1; done; if [ -e "${f}" ]; then kill -9 $(cat "${f}") 2>/dev/null; ${rm}; fi; exit 0`;
    spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
  }
}
