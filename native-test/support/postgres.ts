// One throwaway PostgreSQL cluster per test process (initdb in a temp dir, 127.0.0.1, a free port); a database per call.
import { execFile, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';

export interface PostgresCluster {
  port: number;
  /** Connection URL of a database on the cluster (superuser `postgres`, trust authentication). */
  url(db: string): string;
  /** Creates an empty database and returns its name. */
  createDatabase(): Promise<string>;
  /**
   * Stops the server as an operator would (`pg_ctl stop -m fast`: every connection is terminated, 57P01) and resolves
   * once it is down; nothing listens on the port until start(). Neither blocks this process's event loop.
   */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port and resolves once it accepts connections. */
  start(): Promise<void>;
}

const PG_ROOT = '/usr/lib/postgresql';
const INSTALL_HINT = 'npm test installs them when run as root; otherwise: sudo apt-get install -y postgresql';

let cluster: Promise<PostgresCluster> | undefined;

/** Starts the cluster on first use; later calls share it. It is stopped (and its dir removed) at process exit. */
export function postgresCluster(): Promise<PostgresCluster> {
  cluster ??= start();
  return cluster;
}

/** The highest installed version's bin directory, or an error saying how to install one. */
export function postgresBinDir(): string {
  const versions = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).filter((v) => /^\d+(\.\d+)?$/.test(v)) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  const bin = versions.map((v) => join(PG_ROOT, v, 'bin')).find((b) => existsSync(join(b, 'initdb')) && existsSync(join(b, 'pg_ctl')));
  if (!bin) throw new Error(`PostgreSQL server binaries (initdb, pg_ctl) not found under ${PG_ROOT}/*/bin; ${INSTALL_HINT}`);
  return bin;
}

async function start(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'ocsp-hsm-pg-'));
  // initdb refuses to run as root: the cluster belongs to the postgres user then.
  if (asRoot) {
    const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8', timeout: 10_000 });
    const [uid, gid] = [id('-u'), id('-g')];
    if (uid.status !== 0 || gid.status !== 0) throw new Error(`running as root, but there is no "postgres" user to own the test cluster; ${INSTALL_HINT}`);
    chownSync(dir, Number(uid.stdout), Number(gid.stdout));
  }
  const data = join(dir, 'data');
  const command = (tool: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const run = (tool: string, args: string[], timeout: number): SpawnSyncReturns<string> => {
    const [cmd, argv] = command(tool, args);
    return spawnSync(cmd, argv, { encoding: 'utf8', timeout, cwd: dir });
  };
  const runAsync = (tool: string, args: string[], timeout: number, what: string) =>
    new Promise<void>((resolvePromise, reject) => {
      const [cmd, argv] = command(tool, args);
      execFile(cmd, argv, { timeout, cwd: dir }, (e, stdout, stderr) =>
        e ? reject(new Error(`${what} failed (${e.message}): ${stderr}${stdout}\n${serverLog(dir)}`)) : resolvePromise(),
      );
    });
  const control = {
    stop: () => runAsync('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'], 60_000, 'pg_ctl stop'),
    start: () => runAsync('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start'], 60_000, 'pg_ctl start'),
  };
  const check = (r: SpawnSyncReturns<string>, what: string) => {
    if (r.status !== 0) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}${r.stdout}`);
  };
  // An ICU en-US default collation, as production databases rarely sort bytewise: the store must not depend on it.
  check(
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8', '--locale-provider=icu', '--icu-locale=en-US', '--no-sync'], 120_000),
    'initdb',
  );
  process.once('exit', () => stop(run, dir));
  watchdog(join(bin, 'pg_ctl'), asRoot, data, dir);
  let lastError: Error | undefined;
  // Another process may take the free port between our probe and the server's bind: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    appendFileSync(
      join(data, 'postgresql.conf'),
      [
        `listen_addresses = '127.0.0.1'`,
        `port = ${port}`,
        `unix_socket_directories = '${dir}'`,
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        'max_connections = 200',
        'shared_buffers = 32MB',
        '',
      ].join('\n'),
    );
    const r = run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start'], 60_000);
    if (r.status === 0) return makeCluster(port, control);
    lastError = new Error(`pg_ctl start failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}${r.stdout}\n${serverLog(dir)}`);
  }
  throw lastError!;
}

function makeCluster(port: number, control: Pick<PostgresCluster, 'stop' | 'start'>): PostgresCluster {
  let n = 0;
  const url = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  return {
    port,
    url,
    ...control,
    async createDatabase() {
      const name = `store_${process.pid}_${++n}`;
      const admin = new Client({ connectionString: url('postgres'), connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return name;
    },
  };
}

function stop(run: (tool: string, args: string[], timeout: number) => SpawnSyncReturns<string>, dir: string): void {
  run('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', '-t', '20', 'stop'], 30_000);
  if (!process.env.OCSP_HSM_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
}

// Should this process be killed outright (no 'exit' event), a detached shell stops the cluster once it is gone.
function watchdog(pgCtl: string, asRoot: boolean, data: string, dir: string): void {
  const ctl = `${asRoot ? 'runuser -u postgres -- ' : ''}"${pgCtl}" -D "${data}" -m immediate -t 20 stop`;
  const rm = process.env.OCSP_HSM_KEEP_TEST_DIRS ? ':' : `rm -rf "${dir}"`;
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; if [ -d "${data}" ]; then timeout 30 ${ctl}; ${rm}; fi`;
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

/** A port nothing listens on at the moment (127.0.0.1). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function serverLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'server.log'), 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/** The number one query returns as `n` (e.g. `SELECT count(*) AS n ...`), on a connection of its own. */
export async function pgCount(url: string, sql: string, params: unknown[] = []): Promise<number> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
  await c.connect();
  try {
    return Number((await c.query<{ n: string }>(sql, params)).rows[0]!.n);
  } finally {
    await c.end();
  }
}
