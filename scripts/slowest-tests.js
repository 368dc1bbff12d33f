/**
 * Where the test run's minutes go: reads Jest's `--json` results and prints
 * the slowest test files with their times, slowest first.
 *
 *   node scripts/slowest-tests.js RESULTS.json [COUNT]     (COUNT: 10 by default)
 */
const fs = require('node:fs');
const path = require('node:path');

function main() {
  const [file, countArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: node scripts/slowest-tests.js RESULTS.json [COUNT]');
  const count = Number(countArg ?? 10);
  const results = JSON.parse(fs.readFileSync(file, 'utf8'));
  const root = path.join(__dirname, '..');
  const files = results.testResults
    .map((result) => ({
      name: path.relative(root, result.name),
      seconds: ((result.perfStats?.end ?? result.endTime) - (result.perfStats?.start ?? result.startTime)) / 1000,
      failed: result.status === 'failed',
    }))
    .sort((a, b) => b.seconds - a.seconds);
  const total = files.reduce((sum, f) => sum + f.seconds, 0);
  const width = Math.max(...files.slice(0, count).map((f) => f.name.length));
  process.stdout.write(`slowest test files (${files.length} files, ${total.toFixed(0)} s in all):\n`);
  for (const f of files.slice(0, count)) {
    process.stdout.write(`  ${f.seconds.toFixed(1).padStart(7)} s  ${f.name.padEnd(width)}${f.failed ? '  FAILED' : ''}\n`);
  }
}

try {
  main();
} catch (error) {
  process.stderr.write(`slowest-tests: ${error.message}\n`);
  process.exit(1);
}
