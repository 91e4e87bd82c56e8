// Bundles the two Node CLIs into single CommonJS files that need only Node.js >= 18 (Debian 12's nodejs).
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', target: 'node18', format: 'cjs', sourcemap: false, legalComments: 'none', logLevel: 'warning' };

await build({ ...common, entryPoints: ['lambda-free-tools/src/cli/apt-repo.ts'], outfile: 'dist/apt-repo.cjs', banner: { js: '#!/usr/bin/env node' } });
await build({
  ...common,
  entryPoints: ['lambda-free-tools/src/ops/apt-ops.ts'],
  outfile: 'dist/apt-ops.cjs',
  banner: { js: '#!/usr/bin/env node' },
  // ssh2's optional native bindings are absent on purpose: it falls back to pure JavaScript.
  external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
});
