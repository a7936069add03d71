// The fuzz stage of `npm test`: each target (test/fuzz/targets/) runs its committed corpus, findings included, then
// mutations of it for OCSP_HSM_FUZZ_SECONDS (default 5) from a printed seed. Longer runs: `npm run bench -- fuzz`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runTarget, seedFromEnv } from './fuzz/fuzz-target';
import { TARGETS } from './fuzz/targets';

const seconds = Number(process.env.OCSP_HSM_FUZZ_SECONDS ?? 5);
const seed = seedFromEnv();

describe('fuzz targets', () => {
  for (const target of TARGETS) {
    it(target.name, async (t) => {
      t.diagnostic(`seed ${seed} (replay: OCSP_HSM_FUZZ_SEED=${seed})`);
      const r = await runTarget(target, { seconds, seed, path: process.env.OCSP_HSM_FUZZ_PATH });
      t.diagnostic(`${r.corpusInputs} corpus inputs, ${r.mutatedInputs} mutated inputs in ${r.seconds.toFixed(1)} s`);
      assert.ok(r.corpusInputs > 0, 'the corpus is not empty');
      assert.ok(r.mutatedInputs > 0, 'mutated inputs ran');
    });
  }
});
