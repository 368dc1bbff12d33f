/** The workflows this worker runs. Named exports only: a default export would become a catch-all workflow. */
export { scanLibrary } from './scan-library';
export { scanRootGuard } from './scan-root-guard';
export { scheduledScan } from './scheduled-scan';
