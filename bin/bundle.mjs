// Bundles the CLI into CommonJS files under dist/cli/. Start-up time is the
// product for `nsbox run`: one CommonJS file avoids the ES module loader's
// per-file resolution, and keeping the bootstrap engine (parsers, resolvers,
// wizard) in a second file keeps the run path's file small — V8 parses every
// byte of a script it loads, ~25 ms for the whole CLI. Commands stay lazy:
// esbuild wraps each dynamically imported module in an init function.
// npm packages stay external and load only where they are imported.
import { build } from 'esbuild';

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

await build({ ...common, entryPoints: ['bin/nsbox.ts'], outfile: 'dist/cli/nsbox.cjs', plugins: [splitBootstrap] });
await build({ ...common, entryPoints: ['bin/bootstrap.ts'], outfile: 'dist/cli/bootstrap.cjs' });
