/**
 * `npm run temporal:cli`: prints the absolute path of the Temporal CLI the
 * project uses, obtaining it first if needed (progress on stderr).
 */
import path from 'node:path';
import { loadConfigOrExit } from '../config';
import { locateTemporalCli } from './cli';

const config = loadConfigOrExit();
locateTemporalCli({
  cliPath: config.temporal.cliPath,
  projectRoot: path.resolve(__dirname, '..', '..', '..'),
  log: (line) => process.stderr.write(`${line}\n`),
}).then(
  (binary) => process.stdout.write(`${binary}\n`),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
