// Runs the fuzz targets of `npm test` (test/fuzz/) for as long as asked:
//   npm run bench -- fuzz --minutes 120 [--target crl --target config] [--seed 12345] [--slice 60]
// Targets take turns in slices of --slice seconds, each slice from its own seed (printed; --seed fixes the first, the
// next follow from it), so a long run explores many seeds and every target gets its share. A target stops at its
// first finding (the input is written to a file and the replay command printed); the others go on. Exit 1 if
// anything was found. Totals in bench/results/fuzz.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FuzzFailure, runTarget } from '../test/fuzz/fuzz-target';
import { TARGETS } from '../test/fuzz/targets';
import { machine } from './machine';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    target: { type: 'string', multiple: true },
    seed: { type: 'string' },
    slice: { type: 'string', default: '60' },
  },
});

async function main(): Promise<number> {
  const names = values.target ?? TARGETS.map((t) => t.name);
  const targets = names.map((n) => TARGETS.find((t) => t.name === n) ?? usage(`unknown target "${n}" (${TARGETS.map((t) => t.name).join(', ')})`));
  const minutes = Number(values.minutes);
  const slice = Number(values.slice);
  if (!(minutes > 0) || !(slice > 0)) usage('--minutes and --slice must be positive numbers');
  const totals = new Map(targets.map((t) => [t.name, { slices: 0, corpusInputs: 0, mutatedInputs: 0, seconds: 0, seeds: [] as number[], finding: undefined as string | undefined }]));
  const end = performance.now() + minutes * 60_000;
  let seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  while (performance.now() < end) {
    const live = targets.filter((t) => !totals.get(t.name)!.finding);
    if (live.length === 0) break;
    for (const t of live) {
      const left = (end - performance.now()) / 1000;
      if (left < 1) break;
      const total = totals.get(t.name)!;
      console.log(`${t.name}: seed ${seed}, ${Math.round(Math.min(slice, left))} s`);
      try {
        const r = await runTarget(t, { seconds: Math.min(slice, left), seed });
        total.mutatedInputs += r.mutatedInputs;
        total.corpusInputs = r.corpusInputs;
        total.seconds += r.seconds;
      } catch (e) {
        if (!(e instanceof FuzzFailure)) throw e;
        total.finding = e.message;
        console.log(e.message);
      }
      total.slices++;
      total.seeds.push(seed);
      seed = (seed + 1) % 2 ** 31;
    }
  }
  const results = Object.fromEntries([...totals].map(([name, t]) => [name, { ...t, seeds: undefined, firstSeed: t.seeds[0], lastSeed: t.seeds.at(-1) }]));
  console.table(Object.fromEntries([...totals].map(([n, t]) => [n, { slices: t.slices, mutated: t.mutatedInputs, seconds: Math.round(t.seconds), found: t.finding ? 'yes' : 'no' }])));
  const dir = join(__dirname, '../../bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'fuzz.json'), JSON.stringify({ machine: machine(), minutes, slice, results }, null, 2) + '\n');
  return [...totals.values()].some((t) => t.finding) ? 1 : 0;
}

function usage(message: string): never {
  console.error(`${message}\nusage: npm run bench -- fuzz [--minutes N] [--target NAME]... [--seed N] [--slice SECONDS]`);
  process.exit(2);
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
