/**
 * Prometheus metrics of this process. The API serves them at /metrics; a
 * worker serves its own when WORKER_METRICS_PORT is set.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const scanMetrics = {
  scans: new Counter({ name: 'scanner_scans_total', help: 'Scans ended, by outcome', labelNames: ['outcome'], registers: [registry] }),
  filesProbed: new Counter({
    name: 'scanner_files_probed_total',
    help: 'Files probed, by outcome (new, updated, failed)',
    labelNames: ['outcome'],
    registers: [registry],
  }),
  probeFailures: new Counter({
    name: 'scanner_probe_failures_total',
    help: 'Files that could not be probed, by reason',
    labelNames: ['reason'],
    registers: [registry],
  }),
  // ffprobe costs ~9 ms per file with the static build; buckets resolve that and the long tail up to the kill timeout.
  probeSeconds: new Histogram({
    name: 'scanner_probe_duration_seconds',
    help: 'Time to probe one file',
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
};

/** Labels of every HTTP metric: the route is the pattern (`/api/v1/jobs/:jobId`), never the URL. */
type HttpLabels = { method: string; route: string; status: string };
const HTTP_LABELS = ['method', 'route', 'status'] as const;
// The API answers in 1–100 ms; buckets up to 2.5 s catch a slow Temporal or database.
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

// The conventional names dashboards read (Prometheus' HTTP naming), and the
// first name, kept for dashboards built on it.
const httpRequests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered, by method, route and status', labelNames: HTTP_LABELS, registers: [registry] });
const httpSeconds = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'HTTP request latency, by method, route and status',
  labelNames: HTTP_LABELS,
  buckets: HTTP_BUCKETS,
  registers: [registry],
});
const scannerHttpSeconds = new Histogram({
  name: 'scanner_http_request_duration_seconds',
  help: 'HTTP request latency, by method, route and status (same as http_request_duration_seconds)',
  labelNames: HTTP_LABELS,
  buckets: HTTP_BUCKETS,
  registers: [registry],
});

export const httpMetrics = {
  /** Counts one answered request and its latency under every HTTP metric name. */
  observe(labels: HttpLabels, seconds: number): void {
    httpRequests.inc(labels);
    httpSeconds.observe(labels, seconds);
    scannerHttpSeconds.observe(labels, seconds);
  },
  scansStarted: new Counter({ name: 'scanner_scans_started_total', help: 'Scans started through the API', registers: [registry] }),
};
