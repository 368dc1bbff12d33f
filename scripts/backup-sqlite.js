#!/usr/bin/env node
/**
 * An online backup of a SQLite library: SQLite's backup API copies the
 * database page by page while the API and workers keep reading and writing
 * it, and the copy is a consistent snapshot (checked with integrity_check).
 *
 *   node scripts/backup-sqlite.js data/library.sqlite backups/library-$(date +%F).sqlite
 *
 * Restore: stop the API and workers, put the copy in place of the library
 * file (removing its -wal and -shm files), start them again.
 */
const fs = require('node:fs');
const path = require('node:path');
const Database = require('better-sqlite3');

const [source, target] = process.argv.slice(2);
if (!source || !target) {
  process.stderr.write('usage: node scripts/backup-sqlite.js <library.sqlite> <backup file>\n');
  process.exit(2);
}
if (!fs.existsSync(source)) {
  process.stderr.write(`backup failed: no library at ${source}\n`);
  process.exit(1);
}
if (fs.existsSync(target)) {
  process.stderr.write(`backup failed: ${target} exists; choose a new file\n`);
  process.exit(1);
}
fs.mkdirSync(path.dirname(path.resolve(target)), { recursive: true });

async function main() {
  const db = new Database(source, { fileMustExist: true });
  // Writers hold the lock only briefly: wait for them rather than fail.
  db.pragma('busy_timeout = 10000');
  try {
    const started = Date.now();
    await db.backup(target);
    const copy = new Database(target, { readonly: true });
    try {
      const check = copy.pragma('integrity_check', { simple: true });
      if (check !== 'ok') throw new Error(`the copy fails integrity_check: ${check}`);
      const videos = copy.prepare('select count(*) as n from videos').get().n;
      process.stdout.write(`backed up ${source} to ${target}: ${videos} videos, ${fs.statSync(target).size} bytes, ${Date.now() - started} ms\n`);
    } finally {
      copy.close();
    }
  } finally {
    db.close();
  }
}

main().catch((error) => {
  fs.rmSync(target, { force: true });
  process.stderr.write(`backup failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
