/**
 * The dashboard: one self-contained page that starts a scan, follows it live,
 * cancels it and searches the library, through the same REST API as every
 * other client (with the bearer token, when the service asks for one).
 */
export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Video library scanner</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  form, section { margin: 1rem 0; }
  input[type=text] { width: 28rem; padding: .3rem; }
  button { padding: .3rem .8rem; }
  progress { width: 100%; height: 1.2rem; }
  .error { color: #b00020; }
  dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
  dt { font-weight: 600; }
  table { border-collapse: collapse; width: 100%; }
  td, th { border-bottom: 1px solid #ddd; padding: .2rem .4rem; text-align: left; font-size: .9rem; }
</style>
</head>
<body>
<h1>Video library scanner</h1>
<form id="scan-form">
  <label>Folder <input type="text" id="scan-path" name="path" placeholder="/media/videos" required></label>
  <label><input type="checkbox" id="scan-force"> re-probe unchanged files</label>
  <button type="submit" id="scan-start">Scan</button>
  <label>API token <input type="password" id="token" autocomplete="off" placeholder="only when API_TOKEN is set"></label>
</form>
<p id="message" role="status"></p>
<section id="job" hidden>
  <h2 id="job-title"></h2>
  <progress id="job-progress" max="1" value="0"></progress>
  <dl>
    <dt>Status</dt><dd id="job-status"></dd>
    <dt>Phase</dt><dd id="job-phase"></dd>
    <dt>Files</dt><dd id="job-counts"></dd>
    <dt>Rate</dt><dd id="job-rate"></dd>
    <dt>Temporal</dt><dd><a id="job-link" target="_blank" rel="noopener">open in the Temporal UI</a></dd>
  </dl>
  <button id="job-cancel">Cancel</button>
</section>
<section id="library">
  <h2>Library</h2>
  <form id="search-form">
    <label>Find <input type="text" id="search-q" placeholder="file name or folder"></label>
    <button type="submit">Search</button>
    <span id="search-total"></span>
  </form>
  <table>
    <thead><tr><th>File</th><th>Resolution</th><th>Duration</th><th>Codecs</th><th>Status</th></tr></thead>
    <tbody id="videos"></tbody>
  </table>
</section>
<script>
  const $ = (id) => document.getElementById(id);
  const ended = (status) => ['completed', 'failed', 'cancelled', 'timeout'].includes(status);
  let current = null;
  let timer = null;
  $('token').value = sessionStorage.getItem('token') || '';
  $('token').addEventListener('change', () => sessionStorage.setItem('token', $('token').value));
  function api(path, init = {}) {
    const headers = { ...(init.headers || {}) };
    if ($('token').value) headers.authorization = 'Bearer ' + $('token').value;
    return fetch(path, { ...init, headers });
  }
  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }
  async function search() {
    const q = $('search-q').value.trim();
    const res = await api(q ? '/api/v1/videos/search?q=' + encodeURIComponent(q) : '/api/v1/videos?limit=50');
    const body = await res.json();
    if (!res.ok) { $('search-total').textContent = body.code + ': ' + body.message; return; }
    $('search-total').textContent = body.total + (body.total === 1 ? ' video' : ' videos');
    $('videos').replaceChildren(...body.videos.map((v) => {
      const tr = document.createElement('tr');
      tr.append(
        cell(v.path),
        cell(v.width ? v.width + '×' + v.height : ''),
        cell(v.duration_seconds === null ? '' : v.duration_seconds.toFixed(1) + ' s'),
        cell([v.video_codec, v.audio_codec].filter(Boolean).join(' / ')),
        cell(v.status),
      );
      return tr;
    }));
  }
  $('search-form').addEventListener('submit', (event) => { event.preventDefault(); search(); });
  function show(job) {
    $('job').hidden = false;
    $('job-title').textContent = job.job_id + ' — ' + job.path;
    $('job-progress').value = job.progress === null ? 0 : job.progress;
    $('job-status').textContent = job.status + (job.error ? ' (' + job.error + ')' : '');
    $('job-phase').textContent = job.phase;
    const c = job.counts;
    $('job-counts').textContent = (c.probed + c.skipped) + ' of ' + c.discovered + ' done: ' + c.new + ' new, ' +
      c.updated + ' updated, ' + c.skipped + ' unchanged, ' + c.failed + ' failed';
    $('job-rate').textContent = job.rate_per_s + ' files/s' + (job.eta_seconds === null ? '' : ', about ' + job.eta_seconds + ' s left');
    $('job-link').href = job.temporal.ui_url;
    $('job-cancel').disabled = ended(job.status);
  }
  async function poll() {
    if (!current) return;
    const res = await api('/api/v1/jobs/' + encodeURIComponent(current));
    const body = await res.json();
    if (!res.ok) { $('message').textContent = body.message; return; }
    show(body);
    if (!ended(body.status)) timer = setTimeout(poll, 500);
    else search();
  }
  $('scan-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearTimeout(timer);
    $('message').textContent = '';
    $('message').className = '';
    const res = await api('/api/v1/videos/scan', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: $('scan-path').value, force: $('scan-force').checked }),
    });
    const body = await res.json();
    if (!res.ok) { $('message').textContent = body.code + ': ' + body.message; $('message').className = 'error'; return; }
    current = body.job_id;
    $('message').textContent = 'Scan ' + current + ' started.';
    poll();
  });
  $('job-cancel').addEventListener('click', async () => {
    if (!current) return;
    const res = await api('/api/v1/jobs/' + encodeURIComponent(current) + '/cancel', { method: 'POST' });
    const body = await res.json();
    if (!res.ok) { $('message').textContent = body.code + ': ' + body.message; return; }
    show(body);
  });
  search();
</script>
</body>
</html>
`;
