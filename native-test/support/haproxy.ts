// Debian's HAProxy in front of test responders: its config written to a temp dir, run in the foreground (-db) as a
// child process on a free 127.0.0.1 port, asked for its view of the backends on its admin socket, stopped by PID.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './postgres';
import { waitFor } from './harness';

export const HAPROXY = '/usr/sbin/haproxy';
const INSTALL_HINT = 'npm test installs it when run as root; otherwise: sudo apt-get install -y haproxy';

/** The response header naming the backend server that answered (set by HAProxy on every answer, its own included). */
export const NODE_HEADER = 'X-Ocsp-Node';
/** A request header steering a request to one server while it is up (tests only: to ask a given node through HAProxy). */
export const STEER_HEADER = 'X-Ocsp-Steer';

export interface Backend {
  name: string;
  port: number;
}

/** One row of `show stat` for a server: status as HAProxy prints it ("UP", "DOWN", "UP 1/2", "MAINT", ...). */
export interface ServerStat {
  status: string;
  /** Sessions on the server now. */
  current: number;
  /** Requests the server was given (`stot`), connection errors (`econ`), response errors (`eresp`). */
  total: number;
  connectionErrors: number;
  responseErrors: number;
  /** Requests retried on the same server (`wretr`) and sent to another one (`wredis`). */
  retries: number;
  redispatches: number;
}

/**
 * The load balancer of "Running a cluster" (README), with health checks made fast enough for tests (a node is
 * down about 0.4 s after it stops answering /readyz, up again 0.5 s after it answers 200) and one test-only rule:
 * `X-Ocsp-Steer: <server>` picks that server while it is up.
 */
export function haproxyConfig(port: number, backends: Backend[], adminSocket: string): string {
  return `global
    maxconn 2000
    stats socket ${adminSocket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 15s
    timeout http-request 10s
    timeout check 1s
    # OCSP answers are idempotent (RFC 6960 requests, GET or POST, change nothing): a request whose server
    # refused the connection, closed it without an answer or did not answer in time is sent again, to
    # another server each time (redispatch 1), at most twice.
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend ocsp
    bind 127.0.0.1:${port}
    default_backend responders

backend responders
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 250ms fastinter 100ms downinter 250ms fall 2 rise 2
    http-after-response set-header ${NODE_HEADER} %s
${backends.map((b) => `    use-server ${b.name} if { req.hdr(${STEER_HEADER}) -m str ${b.name} }`).join('\n')}
${backends.map((b) => `    server ${b.name} 127.0.0.1:${b.port}`).join('\n')}
`;
}

export class Haproxy {
  private constructor(
    readonly port: number,
    readonly proc: ChildProcess,
    private readonly adminSocket: string,
    private readonly exited: Promise<number | null>,
    private readonly out: () => string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  output(): string {
    return this.out();
  }

  /** Writes the config into `dir`, checks it (`haproxy -c`), starts HAProxy and waits until it listens. */
  static async start(dir: string, backends: Backend[]): Promise<Haproxy> {
    if (!existsSync(HAPROXY)) throw new Error(`${HAPROXY} not found; ${INSTALL_HINT}`);
    const adminSocket = join(dir, 'haproxy.sock');
    const cfg = join(dir, 'haproxy.cfg');
    let lastError: Error | undefined;
    // Another process may take the free port between our probe and HAProxy's bind: try a few.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      writeFileSync(cfg, haproxyConfig(port, backends, adminSocket));
      const check = spawnSync(HAPROXY, ['-c', '-q', '-f', cfg], { encoding: 'utf8', timeout: 10_000 });
      if (check.status !== 0) throw new Error(`haproxy -c refused ${cfg}: ${check.stderr}${check.stdout}`);
      const proc = spawn(HAPROXY, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.on('data', (d) => (out += d));
      proc.stderr!.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      const h = new Haproxy(port, proc, adminSocket, exited, () => out);
      const up = await Promise.race([waitFor(async () => (await h.stats().catch(() => undefined)) !== undefined, 10_000, 50), exited.then(() => false)]);
      if (up) return h;
      await h.stop();
      lastError = new Error(`haproxy did not start on 127.0.0.1:${port}:\n${out}`);
    }
    throw lastError!;
  }

  /** One command on the admin socket (the runtime API); its whole answer. */
  command(cmd: string, timeoutMs = 5_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(this.adminSocket);
      let text = '';
      const timer = setTimeout(() => s.destroy(new Error(`haproxy admin socket: no answer to "${cmd}" within ${timeoutMs} ms`)), timeoutMs);
      s.on('connect', () => s.end(`${cmd}\n`));
      s.on('data', (d) => (text += d));
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
  }

  /** The servers of the "responders" backend by name, as HAProxy sees them now. */
  async stats(): Promise<Map<string, ServerStat>> {
    const text = await this.command('show stat');
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const header = lines[0]?.replace(/^# /, '').split(',');
    if (!header || !header.includes('svname')) throw new Error(`unexpected answer to "show stat": ${text}`);
    const col = (row: string[], name: string) => row[header.indexOf(name)] ?? '';
    const num = (row: string[], name: string) => Number(col(row, name) || 0);
    const servers = new Map<string, ServerStat>();
    for (const line of lines.slice(1)) {
      const row = line.split(',');
      if (col(row, 'pxname') !== 'responders' || ['FRONTEND', 'BACKEND'].includes(col(row, 'svname'))) continue;
      servers.set(col(row, 'svname'), {
        status: col(row, 'status'),
        current: num(row, 'scur'),
        total: num(row, 'stot'),
        connectionErrors: num(row, 'econ'),
        responseErrors: num(row, 'eresp'),
        retries: num(row, 'wretr'),
        redispatches: num(row, 'wredis'),
      });
    }
    return servers;
  }

  /** Waits until HAProxy's view of each named server is `want` ("UP" or "DOWN"); false when `ms` pass first. */
  waitForStatus(want: Record<string, 'UP' | 'DOWN'>, ms: number): Promise<boolean> {
    return waitFor(async () => {
      const s = await this.stats().catch(() => undefined);
      return !!s && Object.entries(want).every(([name, status]) => s.get(name)?.status === status);
    }, ms, 50);
  }

  /** SIGTERM (HAProxy's hard stop), SIGKILL if it is still there 5 s later; resolves with its exit code. */
  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}
