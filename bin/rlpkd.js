#!/usr/bin/env node
'use strict';
// The CLI is compiled to dist/ by `npm ci` (the package's prepare script).
let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]main/.test(err.message)) {
    process.stderr.write('error: rlpkd is not built\n  hint: run `npm ci` (or `npm run build`) in the rl-pyramidkd folder\n');
    process.exit(1);
  }
  throw err;
}
cli.main(process.argv).then((code) => {
  process.exitCode = code;
});
