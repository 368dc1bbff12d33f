/**
 * `/metrics` under the names dashboards expect: `http_requests_total` and
 * `http_request_duration_seconds`, labelled by method, route pattern and
 * status, beside the `scanner_*` metrics, read from the real stack.
 */
import { http, startStack, type Stack } from '../support/stack';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format, sample lines only. */
function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = pair[2] as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.close();
});

it('counts requests and their latency as http_requests_total and http_request_duration_seconds by method, route and status', async () => {
  for (const id of [999_991, 999_992, 999_993]) {
    expect((await http(stack.baseUrl, 'GET', `/api/v1/videos/${id}`)).status).toBe(404);
  }
  expect((await http(stack.baseUrl, 'GET', '/health/live')).status).toBe(200);

  const res = await fetch(`${stack.baseUrl}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text).toContain('# TYPE http_requests_total counter');
  expect(text).toContain('# TYPE http_request_duration_seconds histogram');
  const samples = parseSamples(text);

  const requests = (route: string, status: string): number =>
    samples.find((s) => s.name === 'http_requests_total' && s.labels.method === 'GET' && s.labels.route === route && s.labels.status === status)?.value ?? 0;
  // The route is the pattern: three ids are one series, and no id becomes a label.
  expect(requests('/api/v1/videos/:id', '404')).toBeGreaterThanOrEqual(3);
  expect(requests('/health/live', '200')).toBeGreaterThanOrEqual(1);
  expect(samples.some((s) => s.name.startsWith('http_') && (s.labels.route ?? '').includes('99999'))).toBe(false);

  const count = samples.find(
    (s) => s.name === 'http_request_duration_seconds_count' && s.labels.method === 'GET' && s.labels.route === '/api/v1/videos/:id' && s.labels.status === '404',
  );
  expect(count?.value).toBeGreaterThanOrEqual(3);
  const infBucket = samples.find(
    (s) => s.name === 'http_request_duration_seconds_bucket' && s.labels.le === '+Inf' && s.labels.route === '/health/live' && s.labels.status === '200',
  );
  expect(infBucket?.value).toBeGreaterThanOrEqual(1);
});

it('keeps the scanner_* metrics beside them', async () => {
  const text = await fetch(`${stack.baseUrl}/metrics`).then((r) => r.text());
  for (const name of ['scanner_scans_started_total', 'scanner_http_request_duration_seconds', 'scanner_probe_duration_seconds', 'scanner_files_probed_total']) {
    expect(text).toContain(`# TYPE ${name} `);
  }
});
