// Temporary directories for tests, removed when the test process exits (each test file is its own process).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];
process.once('exit', () => {
  if (process.env.OCSP_HSM_KEEP_TEST_DIRS) return;
  for (const d of created) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `ocsp-hsm-${prefix}-`));
  created.push(d);
  return d;
}
