// Preloaded into a daemon (NODE_OPTIONS=--require, where --cpu-prof is not allowed) to write a V8 CPU profile of
// its whole life into $OCSP_BENCH_CPU_PROF_DIR on exit, for chrome://inspect or speedscope.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.OCSP_BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  // An in-process session answers synchronously, so this still works inside 'exit'.
  process.once('exit', () => {
    session.post('Profiler.stop', (err, r) => {
      if (!err) writeFileSync(join(dir, `daemon-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
    });
  });
}
