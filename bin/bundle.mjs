// Bundles the CLI into CommonJS files under dist/cli/. Start-up time is the
// product for `nsbox run`:
// - one CommonJS file for the run path avoids the ES module loader's
//   per-file resolution (URL parsing, linking);
// - the bootstrap engine (parsers, resolvers, wizard) lives in a second file,
//   so the run path's file stays small (V8 parses every byte it loads);
// - dist/cli/nsbox.cjs is a small loader that compiles the main file with a
//   V8 code cache (written after the first run), skipping parse and compile.
// Commands stay lazy: esbuild wraps each dynamically imported module in an
// init function. npm packages stay external in the run path's file; the
// bootstrap file takes the pure-JavaScript ones it uses in (saxes,
// tar-stream, commander…), so that they too load from one file through the
// code cache instead of many files resolved and compiled one by one.
// Native addons (koffi, zstd-napi, node-liblzma), the terminal-only task
// list and prompts, and openpgp (a megabyte that only what pgp-lite does
// not cover loads: bootstrap/pgp-lite.ts) stay external.
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

// bin/nsbox.ts imports './bootstrap.js' (and the image commands, './export.js'
// and './import.js') lazily: point each at a bundle of its own.
const SPLIT = ['bootstrap', 'export', 'import'];
const splitBootstrap = {
  name: 'split-bootstrap',
  setup(b) {
    b.onResolve({ filter: /^\.\/(bootstrap|export|import)\.js$/ }, (args) =>
      args.importer.endsWith('bin/nsbox.ts') ? { path: args.path.replace(/\.js$/, '.cjs'), external: true } : undefined);
  },
};

// bootstrap/archive/tar.ts replaces tar-stream's pax decoder (binary xattr values); in a
// bundle, the tar-stream it must patch is the bundled copy, not node_modules': the bundled
// headers module hands itself over under a global symbol.
const exposeTarHeaders = {
  name: 'expose-tar-stream-headers',
  setup(b) {
    b.onLoad({ filter: /[\\/]tar-stream[\\/]headers\.js$/ }, (args) => ({
      contents: `${readFileSync(args.path, 'utf8')}\n;globalThis[Symbol.for('nsbox.tar-stream.headers')] = module.exports;\n`,
      loader: 'js',
    }));
  },
};

rmSync('dist/cli', { recursive: true, force: true });
await build({ ...common, entryPoints: ['bin/nsbox.ts'], outfile: 'dist/cli/main.cjs', plugins: [splitBootstrap] });
const BOOTSTRAP_EXTERNAL = ['koffi', 'zstd-napi', 'node-liblzma', 'listr2', '@inquirer/*', 'openpgp'];
for (const name of SPLIT) await build({ ...common, packages: undefined, external: BOOTSTRAP_EXTERNAL, plugins: [exposeTarHeaders], entryPoints: [`bin/${name}.ts`], outfile: `dist/cli/${name}.cjs` });

// vm.Script has no dynamic-import hook on Node 20 (and a code-cached script
// loses the one it was given): external imports become require, which
// loads ES modules too since Node 20.19 (listr2 and the prompts are ESM).
for (const file of ['dist/cli/main.cjs', ...SPLIT.map((n) => `dist/cli/${n}.cjs`)]) {
  // ASCII only (esbuild keeps some comments as written): V8 then holds the source as a one-byte
  // string, half the memory and faster to read; \u escapes mean the same in strings, regular
  // expressions, identifiers and comments.
  const text = readFileSync(file, 'utf8').replace(/^#!.*\n/, '').replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  // a computed import() (a user's recipe file) goes through the loader's own import(), left under a global symbol
  writeFileSync(file, text.replace(/\bimport\(("[^"]+")\)/g, 'Promise.resolve().then(() => require($1))').replace(/\bimport\((?=[^"'\s])/g, "globalThis[Symbol.for('nsbox.import')]("));
}
if (!readFileSync('dist/cli/main.cjs', 'utf8').includes('require("./bootstrap.cjs")')) throw new Error('bundle: the bootstrap import was not found in main.cjs');

writeFileSync('dist/cli/nsbox.cjs', `#!/usr/bin/env node
'use strict';
// Loads main.cjs (and, for bootstrap, export and import, their own bundles) through V8 code caches
// kept beside them (see bin/bundle.mjs).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
// A cache holds only the functions of the run that wrote it: nsbox run, the path whose start-up
// is measured, keeps its own (main.cjs's part of a bootstrap is another path).
const flavour = process.argv[2] === 'run' ? '.run' : '';
function load(name, parent) {
  const file = path.join(__dirname, name);
  const source = fs.readFileSync(file, 'utf8');
  const cacheFile = path.join(__dirname, '.' + name + flavour + '.' + process.version + '.' + process.arch + '.v8cache');
  let cachedData;
  try { cachedData = fs.readFileSync(cacheFile); } catch {}
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  if (!cachedData || script.cachedDataRejected) {
    // Written at exit, so the functions this run compiled are in it too; only by a run that did
    // its command's whole job (bin/code-cache.ts): --help or a refused flag compile next to nothing.
    process.once('exit', () => {
      if (!globalThis[Symbol.for('nsbox.code-cache')]) return;
      try {
        const tmp = cacheFile + '.' + process.pid;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
      } catch {}
    });
  }
  const mod = new Module(file, parent);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(__dirname);
  const req = (id) => (${JSON.stringify(SPLIT.map((n) => `./${n}.cjs`))}.includes(id) ? load(id.slice(2), mod) : mod.require(id));
  script.runInThisContext()(mod.exports, req, mod, file, __dirname);
  return mod.exports;
}
// Code compiled through vm.Script has no dynamic import(): the computed ones in the bundles call this instead.
globalThis[Symbol.for('nsbox.import')] = (specifier) => import(specifier);
load('main.cjs', module);
`);
chmodSync('dist/cli/nsbox.cjs', 0o755);
