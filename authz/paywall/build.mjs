// Builds the paywall's assets: src/main.js bundled with the JavaScript client it imports
// (clients/js/src) and viem into one ES module, and the style, into dist/ (or into the
// directory given as the first argument, which the Go test that checks the committed bundle
// is fresh uses). Run it with `npm run build:paywall`.
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const out = process.argv[2] ?? here('dist');
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: [here('src/main.js')],
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2020',
  legalComments: 'eof', // the licences of the bundled libraries travel with them
  outfile: `${out}/paywall.js`,
  logLevel: 'warning',
});
copyFileSync(here('src/paywall.css'), `${out}/paywall.css`);
