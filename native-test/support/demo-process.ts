// `ocsp-hsm demo` as a child process in a directory of its own, for tests that use the demo as users get it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { CLI } from './harness';

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs the demo in `cwd` (creating demo/ there the first time) until it listens; returns its output and a stop. */
export function runDemo(cwd: string, port: number): Promise<{ output: string; stop: () => Promise<number | null>; log: () => string }> {
  const env = { ...process.env };
  delete env.SOFTHSM2_CONF; // the demo must find its own token without help
  const proc = spawn(process.execPath, [CLI, 'demo', '--dir', 'demo', '--port', String(port)], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', r));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`demo did not listen within 60s:\n${out}`));
    }, 60_000);
    proc.stdout.on('data', () => {
      if (!/"msg":"listening"/.test(out)) return;
      clearTimeout(timer);
      resolve({
        output: out,
        log: () => `${out}${proc.signalCode ? `\n(ended by ${proc.signalCode})` : ''}`,
        stop: async () => {
          if (proc.exitCode === null) proc.kill('SIGTERM');
          return exited;
        },
      });
    });
    exited.then((code) => reject(new Error(`demo exited ${code}:\n${out}`)));
  });
}
