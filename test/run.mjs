// Runs mocha with a JSON reporter on a side file and prints mocha's normal
// output plus the plain summary line CI reads: "N passed, N failed".
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'nsbox-mocha-'));
const json = join(dir, 'stats.json');
const specs = process.argv.slice(2).length ? process.argv.slice(2) : ['test/**/*.test.ts'];
const args = ['node_modules/mocha/bin/mocha.js', '--recursive', '--reporter', 'test/summary-reporter.cjs', '--reporter-option', `json=${json}`, ...specs];
const child = spawn(process.execPath, args, { stdio: 'inherit' });
child.on('exit', (code, signal) => {
  let passed = 0, failed = 0, pending = 0;
  try {
    const stats = JSON.parse(readFileSync(json, 'utf8'));
    passed = stats.passes; failed = stats.failures; pending = stats.pending;
  } catch {
    failed = Math.max(1, failed);
  }
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0 && failed === 0) failed = 1;
  console.log(`${passed} passed, ${failed} failed${pending ? `, ${pending} skipped` : ''}`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
