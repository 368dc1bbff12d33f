/**
 * Replays every recorded history in a folder against the workflow code in
 * src/workflows and prints one JSON line: {"replayed": n, "failures": [...]}.
 * Runs outside Jest because the protobuf JSON reader needs the one module
 * registry that Node gives it.
 */
const fs = require('node:fs');
const path = require('node:path');
const { temporal } = require('@temporalio/proto');
const { Worker, bundleWorkflowCode } = require('@temporalio/worker');

async function main() {
  const dir = process.argv[2];
  const workflowsPath = process.argv[3] ?? path.join(__dirname, '..', 'src', 'workflows', 'index.ts');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.binpb')).sort();
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error(m) { process.stderr.write(`${m}\n`); } };
  const workflowBundle = await bundleWorkflowCode({ workflowsPath, logger: quiet });
  const histories = files.map((name) => ({ workflowId: name, history: temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, name))) }));
  const failures = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
    replayed += 1;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  process.stdout.write(`${JSON.stringify({ replayed, files, failures })}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
