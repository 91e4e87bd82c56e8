// Bundles the two Node CLIs into single CommonJS files that need only Node.js >= 18 (Debian 12's nodejs).
import { build } from 'esbuild';

// openpgp's Node build is an ES module that calls createRequire(import.meta.url); in a CommonJS bundle
// import.meta is empty, so give it the bundle's own URL.
const importMetaUrl = 'var __import_meta_url = require("url").pathToFileURL(__filename).href;';
const banner = { js: `#!/usr/bin/env node\n${importMetaUrl}` };
// No minify: measured on `apt-repo --help` (node 20), the minified bundle (1.3 MB instead of 2.5 MB)
// loads no faster (124 ms either way, best of 15): V8 parses the function bodies lazily in both, and
// minified code wraps more functions in parentheses, which V8 compiles eagerly. What cut the load
// time is evaluating less: each command imports its implementation when it runs (cli/commands/*).
const common = {
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'import.meta.url': '__import_meta_url' },
  banner,
};

await build({ ...common, entryPoints: ['lambda-free-tools/src/cli/apt-repo.ts'], outfile: 'dist/apt-repo.cjs' });
await build({
  ...common,
  entryPoints: ['lambda-free-tools/src/ops/apt-ops.ts'],
  outfile: 'dist/apt-ops.cjs',
  // ssh2's optional native bindings are absent on purpose: it falls back to pure JavaScript.
  external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
});
