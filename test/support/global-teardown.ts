/** Stops the test run's Temporal dev server. */
export default async function globalTeardown(): Promise<void> {
  await globalThis.temporalTestServer?.stop();
}
