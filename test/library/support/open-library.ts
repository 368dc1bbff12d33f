/**
 * Opens a library in a process of its own and prints what its open did to
 * the schema, as one JSON line: several of these started at once test that
 * concurrent migrations do not trip over each other across processes.
 */
import { Library } from '../../../src/library/library';

async function main(url: string): Promise<void> {
  const library = await Library.open(url);
  process.stdout.write(`${JSON.stringify(library.migrations)}\n`);
  await library.close();
}

main(process.argv[2] ?? '').catch((error: unknown) => {
  process.stderr.write(`open failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
