// Bundles the CLI into one CommonJS file, dist/cli/nsbox.cjs. Start-up time
// is the product for `nsbox run`: a single CommonJS file avoids the ES module
// loader's per-file resolution (URL parsing, linking) that costs tens of
// milliseconds. Commands stay lazy: esbuild wraps each dynamically imported
// module in an init function that runs only when the command is chosen.
// npm packages stay external and load only where they are imported.
import { build } from 'esbuild';
await build({
  entryPoints: ['bin/nsbox.ts'],
  outfile: 'dist/cli/nsbox.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  define: { 'import.meta.url': '__nsbox_import_meta_url' },
  banner: { js: "const __nsbox_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
