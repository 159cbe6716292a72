// `npm test`: makes sure the system packages the tests need are there
// (test/system-packages.mjs), builds, runs mocha with a JSON reporter on a
// side file, and prints mocha's normal output plus the plain summary line
// CI reads last: "N passed, N failed".
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePackages } from './system-packages.mjs';

const summary = (passed, failed, pending) => {
  if (pending) console.log(`(${pending} skipped)`);
  console.log(`${passed} passed, ${failed} failed`);
};

const problem = ensurePackages();
if (problem) {
  console.log(`nsbox: ${problem}`);
  summary(0, 1);
  process.exit(1);
}
const build = spawnSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.log('nsbox: the build failed (see above)');
  summary(0, 1);
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'nsbox-mocha-'));
const json = join(dir, 'stats.json');
const specs = process.argv.slice(2).length ? process.argv.slice(2) : ['test/**/*.test.ts'];
const args = ['node_modules/mocha/bin/mocha.js', '--recursive', '--reporter', 'test/summary-reporter.cjs', '--reporter-option', `json=${json}`, ...specs];
const child = spawn(process.execPath, args, { stdio: 'inherit' });
child.on('exit', (code) => {
  let passed = 0, failed = 0, pending = 0;
  try {
    const stats = JSON.parse(readFileSync(json, 'utf8'));
    passed = stats.passes; failed = stats.failures; pending = stats.pending;
  } catch {
    failed = Math.max(1, failed);
  }
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0 && failed === 0) failed = 1;
  summary(passed, failed, pending);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
