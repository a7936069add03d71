// The reference for live signing: pkcs11js async C_Sign in a tight loop on N sessions, same key, nothing else.
// usage: node raw-sign-loop.js '<json {modulePath, tokenLabel, pinFile, keyLabel, keyType, sessions, durationMs, dataBytes}>'
import { randomBytes } from 'node:crypto';
import { BenchKeySpec, openBenchKey } from './bench-key';

interface Spec extends BenchKeySpec {
  durationMs: number;
  dataBytes: number;
}

async function main(): Promise<void> {
  const s = JSON.parse(process.argv[2]!) as Spec;
  const { p11, sessions, key, mechanism, input: toInput } = openBenchKey(s);
  const input = toInput(randomBytes(s.dataBytes));
  let count = 0;
  const cpuStart = process.cpuUsage();
  const end = performance.now() + s.durationMs;
  const start = performance.now();
  await Promise.all(
    sessions.map(async (session) => {
      while (performance.now() < end) {
        p11.C_SignInit(session, { mechanism }, key);
        await p11.C_SignAsync(session, input, Buffer.alloc(512));
        count++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  // CPU of every thread of this process (libuv's pool, where SoftHSM2 signs, included), as cores busy.
  const cpu = process.cpuUsage(cpuStart);
  process.stdout.write(JSON.stringify({ signsPerSecond: count / seconds, cores: (cpu.user + cpu.system) / 1e6 / seconds }));
  p11.C_Logout(sessions[0]!);
  p11.C_Finalize();
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e));
  process.exit(1);
});
