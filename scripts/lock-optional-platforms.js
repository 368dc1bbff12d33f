/**
 * Adds to package-lock.json the platform packages (other OSes' and CPUs'
 * builds of @swc/core and friends) that the registry this project installs
 * from does not serve, so that `npm ci` accepts the lock. npm skips optional
 * packages it cannot install, so on Linux they are never fetched.
 * Run after any `npm install` that rewrites the lock.
 */
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const packages = lock.packages;
let added = 0;
for (const [where, entry] of Object.entries(packages)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${where ? `${where}/` : ''}node_modules/${name}`;
    const top = `node_modules/${name}`;
    if (packages[nested] || packages[top]) continue;
    packages[top] = { version: spec.replace(/^[\^~=]/, ''), dev: entry.dev || undefined, optional: true };
    added += 1;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`added ${added} optional platform package(s) to the lock\n`);
