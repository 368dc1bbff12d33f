/** Stops the test run's Temporal dev server and removes the run's workflow bundle. */
import { promises as fs } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  await globalThis.temporalTestServer?.stop();
  if (globalThis.temporalTestBundleDir) await fs.rm(globalThis.temporalTestBundleDir, { recursive: true, force: true });
}
