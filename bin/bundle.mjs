// Bundles the CLI into CommonJS files under dist/cli/. Start-up time is the
// product for `nsbox run`:
// - one CommonJS file for the run path avoids the ES module loader's
//   per-file resolution (URL parsing, linking);
// - the bootstrap engine (parsers, resolvers, wizard) lives in a second file,
//   so the run path's file stays small (V8 parses every byte it loads);
// - dist/cli/nsbox.cjs is a small loader that compiles the main file with a
//   V8 code cache (written after the first run), skipping parse and compile.
// Commands stay lazy: esbuild wraps each dynamically imported module in an
// init function. npm packages stay external and load where they are imported.
import { build } from 'esbuild';
import { readFileSync, writeFileSync, chmodSync, rmSync } from 'node:fs';

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  define: { 'import.meta.url': '__nsbox_import_meta_url' },
  banner: { js: "const __nsbox_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
};

// bin/nsbox.ts imports './bootstrap.js' lazily: point it at the second bundle.
const splitBootstrap = {
  name: 'split-bootstrap',
  setup(b) {
    b.onResolve({ filter: /^\.\/bootstrap\.js$/ }, (args) =>
      args.importer.endsWith('bin/nsbox.ts') ? { path: './bootstrap.cjs', external: true } : undefined);
  },
};

rmSync('dist/cli', { recursive: true, force: true });
await build({ ...common, entryPoints: ['bin/nsbox.ts'], outfile: 'dist/cli/main.cjs', plugins: [splitBootstrap] });
await build({ ...common, entryPoints: ['bin/bootstrap.ts'], outfile: 'dist/cli/bootstrap.cjs' });

// vm.Script has no dynamic-import hook on Node 20: load the bootstrap bundle with require.
const main = 'dist/cli/main.cjs';
const text = readFileSync(main, 'utf8').replace(/^#!.*\n/, '');
const patched = text.replace(/\bimport\(("[^"]+")\)/g, 'Promise.resolve().then(() => require($1))');
if (!patched.includes('require("./bootstrap.cjs")')) throw new Error('bundle: the bootstrap import was not found in main.cjs');
writeFileSync(main, patched);

writeFileSync('dist/cli/nsbox.cjs', `#!/usr/bin/env node
'use strict';
// Loads main.cjs through a V8 code cache kept beside it (see bin/bundle.mjs).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
const file = path.join(__dirname, 'main.cjs');
const source = fs.readFileSync(file, 'utf8');
const cacheFile = path.join(__dirname, '.main.cjs.' + process.version + '.' + process.arch + '.v8cache');
let cachedData;
try { cachedData = fs.readFileSync(cacheFile); } catch {}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
if (!cachedData || script.cachedDataRejected) {
  // Written at exit, so the functions this run compiled are in it too.
  process.once('exit', () => {
    try {
      const tmp = cacheFile + '.' + process.pid;
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {}
  });
}
const mod = new Module(file, module);
mod.filename = file;
mod.paths = Module._nodeModulePaths(__dirname);
script.runInThisContext()(mod.exports, (id) => mod.require(id), mod, file, __dirname);
`);
chmodSync('dist/cli/nsbox.cjs', 0o755);
