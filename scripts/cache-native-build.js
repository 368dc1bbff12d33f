#!/usr/bin/env node
/**
 * Keeps better-sqlite3's native build where its installer looks for a
 * downloaded prebuild (npm's cache, `_prebuilds/`): the release it would
 * download is out of reach here, so without this every `npm ci` compiles
 * SQLite again (about a minute of a 2-core machine). Run after `npm ci`;
 * the next install on this machine unpacks this build instead. Only a build
 * that loads in this Node is kept, and a kept one is never replaced.
 *
 *   node scripts/cache-native-build.js
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const PACKAGE = 'better-sqlite3';
const BINARY = path.join('build', 'Release', 'better_sqlite3.node');

const dir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
const installer = path.dirname(require.resolve('prebuild-install/package.json'));
const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
// The installer's own options (runtime, ABI, platform, arch) and naming, as it computes them for this package.
const rc = require(path.join(installer, 'rc'))(pkg);
const util = require(path.join(installer, 'util'));
const cached = util.cachedPrebuild(util.getDownloadUrl({ ...rc, pkg }));

if (fs.existsSync(cached)) {
  console.log(`${PACKAGE}: build kept at ${cached}`);
  process.exit(0);
}
const binary = path.join(dir, BINARY);
require(binary);
fs.mkdirSync(path.dirname(cached), { recursive: true });
const partial = `${cached}.${process.pid}.tmp`;
execFileSync('tar', ['-czf', partial, '-C', dir, BINARY]);
fs.renameSync(partial, cached);
console.log(`${PACKAGE}: build kept at ${cached} for the next install`);
