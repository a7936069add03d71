// Debian's HAProxy in front of test responders: its config written to a temp dir, run in the foreground (-db) as a
// child process on a free 127.0.0.1 port, asked for its view of the backends on its admin socket, stopped by PID.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './postgres';
import { ROOT, waitFor } from './harness';

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

/** The config README "Running a cluster" documents; the tests run it, edited only where a test must differ. */
export const EXAMPLE_CONFIG = join(ROOT, 'config/haproxy.cfg');

/**
 * config/haproxy.cfg made runnable here: a global section of its own (no chroot, user, syslog or daemon; the admin
 * socket in the test's dir), the frontend bound to a free 127.0.0.1 port, the test's servers, health checks fast
 * enough for tests (a node is out about 0.3 s after it stops answering /readyz, back 0.5 s after it answers 200),
 * and two test-only rules: `X-Ocsp-Steer: <server>` picks that server while it is up, and every answer names its
 * server in `X-Ocsp-Node`. Everything else (timeouts, retries, redispatch, balancing, the check) is the example's.
 */
export function haproxyConfig(port: number, backends: Backend[], adminSocket: string, example = readFileSync(EXAMPLE_CONFIG, 'utf8')): string {
  const sections = example.split(/\n(?=[a-z])/).filter((s) => !s.startsWith('#'));
  const edited = sections.map((section) => {
    const [head] = section.split('\n', 1);
    if (head === 'global') return `global\n    maxconn 2000\n    stats socket ${adminSocket} mode 600 level admin\n`;
    if (head === 'frontend ocsp') return replaceLine(section, /^\s+bind .*$/m, `    bind 127.0.0.1:${port}`);
    if (head === 'backend responders') {
      const kept = section.split('\n').filter((l) => !/^\s+(server|default-server) /.test(l));
      return [
        ...kept.filter((l) => l.trim() !== ''),
        '    default-server check inter 250ms fastinter 100ms downinter 250ms fall 2 rise 2',
        `    http-after-response set-header ${NODE_HEADER} %s`,
        ...backends.map((b) => `    use-server ${b.name} if { req.hdr(${STEER_HEADER}) -m str ${b.name} }`),
        ...backends.map((b) => `    server ${b.name} 127.0.0.1:${b.port}`),
        '',
      ].join('\n');
    }
    return section;
  });
  for (const head of ['global', 'defaults', 'frontend ocsp', 'backend responders']) {
    if (!sections.some((s) => s.startsWith(head))) throw new Error(`${EXAMPLE_CONFIG} has no "${head}" section`);
  }
  return edited.join('\n');
}

function replaceLine(text: string, line: RegExp, by: string): string {
  if (!line.test(text)) throw new Error(`${EXAMPLE_CONFIG}: no line matching ${line}`);
  return text.replace(line, by);
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
