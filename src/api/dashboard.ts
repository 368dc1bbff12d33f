/**
 * The dashboard: one self-contained page, through the same REST API as every
 * other client (with the bearer token, when the service asks for one).
 *
 * - Scans: running ones first, then recent ones with their outcome. Each
 *   running scan's bar is fed by its event stream, read with fetch() and a
 *   streaming body so that it carries the Authorization header like every
 *   other call (EventSource cannot send headers, and a token in a URL ends up
 *   in logs). Scans started elsewhere (the CLI, a schedule, a webhook, another
 *   API process) are learned from the activity feed at /ws (the token as the
 *   subprotocol `bearer.<token>`, all a browser's WebSocket can send); only
 *   while the feed is down, and no stream is open, does the page look at the
 *   list every few seconds instead.
 * - The library shows videos as the scan records them: while a followed
 *   scan's count of new and updated files grows, the library view is read
 *   again, at most every couple of seconds.
 * - Browsers open at most six HTTP/1.1 connections to one server, so at most
 *   four scans are followed live at once; others show their last state until
 *   a followed one ends.
 * - Pause and Resume on a running or paused scan; a paused scan's stream
 *   stays open (it keeps sending its state), so it needs no polling either.
 * - The library: search and paging, or only the videos whose files are gone.
 *   Each video shows its picture in a box of fixed size (the rows never jump
 *   as pictures arrive), fetched only once its row comes near the viewport.
 *   Pictures are fetched with the token like every other call and shown
 *   through object URLs: an <img src> cannot send the Authorization header,
 *   and the token is never put in a URL. fetch() keeps the HTTP cache and
 *   its ETag revalidation.
 * - Scan schedules: list, create (folder and interval), run now, pause,
 *   unpause, delete. The list is read on load and after each change, never
 *   on a timer.
 * - Everything that comes from the server (paths, ffprobe's codec names, error
 *   text) is put on the page with textContent, never parsed as HTML.
 */
export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Video library scanner</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { color-scheme: light; }
  body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 64rem; padding: 0 1rem; color: #1a1a1a; background: #fff; }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; }
  h2 { font-size: 1.15rem; margin: 1.6rem 0 .6rem; }
  h3 { font-size: 1rem; margin: 0; overflow-wrap: anywhere; }
  a { color: #0b57a4; }
  :focus-visible { outline: 3px solid #0b57a4; outline-offset: 2px; }
  form { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; margin: .5rem 0; }
  .field { display: flex; flex-direction: column; gap: .15rem; font-weight: 600; }
  .check { display: flex; align-items: center; gap: .35rem; }
  input[type=text], input[type=search], input[type=password] { font: inherit; padding: .35rem .5rem; border: 1px solid #6b6b6b; border-radius: 4px; min-width: 18rem; }
  button { font: inherit; padding: .35rem .9rem; border: 1px solid #0b57a4; border-radius: 4px; background: #0b57a4; color: #fff; cursor: pointer; }
  button.secondary { background: #fff; color: #0b57a4; }
  button:disabled { background: #e8e8e8; border-color: #c4c4c4; color: #595959; cursor: default; }
  .message { min-height: 1.4em; margin: .4rem 0; }
  .error { color: #b00020; }
  .hint { color: #4d4d4d; font-size: .9rem; }
  .toolbar { display: flex; align-items: center; gap: 1rem; flex-wrap: wrap; }
  ol.scans { list-style: none; margin: 0; padding: 0; display: grid; gap: .6rem; }
  .scan { border: 1px solid #c4c4c4; border-radius: 6px; padding: .6rem .8rem; }
  .scan[data-status=running], .scan[data-status=pending] { border-color: #0b57a4; border-width: 2px; }
  .scan[data-status=paused] { border-color: #8a5300; border-width: 2px; border-style: dashed; }
  .scan-head { display: flex; justify-content: space-between; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
  .badge { font-size: .85rem; font-weight: 700; padding: .05rem .45rem; border-radius: 3px; border: 1px solid currentColor; white-space: nowrap; }
  .badge.running, .badge.pending { color: #0b57a4; }
  .badge.completed { color: #1e6b2f; }
  .badge.failed, .badge.timeout { color: #b00020; }
  .badge.cancelled { color: #4d4d4d; }
  .badge.paused { color: #8a5300; }
  ul.schedules { list-style: none; margin: .5rem 0; padding: 0; display: grid; gap: .5rem; }
  .schedule { border: 1px solid #c4c4c4; border-radius: 6px; padding: .5rem .8rem; }
  .schedule p { margin: .15rem 0; }
  progress { width: 100%; height: 1.1rem; margin: .35rem 0; accent-color: #0b57a4; }
  .scan p { margin: .15rem 0; }
  .scan-actions { display: flex; gap: .5rem; align-items: center; margin-top: .35rem; flex-wrap: wrap; }
  .scan-errors { font-size: .9rem; }
  .scan-errors li { overflow-wrap: anywhere; }
  table { border-collapse: collapse; width: 100%; }
  caption { text-align: left; padding: .2rem 0; color: #4d4d4d; }
  td, th { border-bottom: 1px solid #d0d0d0; padding: .25rem .4rem; text-align: left; font-size: .9rem; vertical-align: top; }
  td:first-child { overflow-wrap: anywhere; }
  .video-file { display: flex; gap: .6rem; align-items: flex-start; }
  /* 16:9 at a fixed size: the row's height is known before the picture arrives. */
  .thumb { flex: none; display: block; width: 160px; height: 90px; object-fit: contain; background: #e8e8e8; border-radius: 3px; }
  .pager { display: flex; gap: .8rem; align-items: center; margin: .6rem 0; }
  .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
</style>
</head>
<body>
<h1>Video library scanner</h1>
<main>
<section aria-labelledby="start-title">
  <h2 id="start-title">Start a scan</h2>
  <form id="scan-form">
    <label class="field" for="scan-path">Folder <input type="text" id="scan-path" name="path" placeholder="/media/videos" required></label>
    <label class="check" for="scan-force"><input type="checkbox" id="scan-force"> Re-probe unchanged files</label>
    <button type="submit" id="scan-start">Scan</button>
  </form>
  <form id="token-form">
    <label class="field" for="token">API token <input type="password" id="token" autocomplete="off" placeholder="only when API_TOKEN is set" aria-describedby="token-hint"></label>
    <span id="token-hint" class="hint">Kept for this tab only; sent as a bearer token on every call.</span>
  </form>
  <p id="message" class="message" role="status" aria-live="polite"></p>
</section>

<section aria-labelledby="scans-title">
  <div class="toolbar">
    <h2 id="scans-title">Scans</h2>
    <button type="button" class="secondary" id="scans-refresh">Refresh list</button>
    <span id="scans-note" class="hint" role="status" aria-live="polite"></span>
  </div>
  <p id="scans-empty" class="hint">No scans yet.</p>
  <ol id="scans" class="scans" aria-labelledby="scans-title"></ol>
</section>

<section id="schedules-section" aria-labelledby="schedules-title">
  <div class="toolbar">
    <h2 id="schedules-title">Schedules</h2>
    <button type="button" class="secondary" id="schedules-refresh">Refresh schedules</button>
  </div>
  <form id="schedule-form">
    <label class="field" for="schedule-path">Folder <input type="text" id="schedule-path" placeholder="/media/videos" required></label>
    <label class="field" for="schedule-every">Every <input type="text" id="schedule-every" placeholder="12h" required aria-describedby="schedule-every-hint"></label>
    <span id="schedule-every-hint" class="hint">An interval such as 90s, 30m, 12h or 1d.</span>
    <button type="submit" id="schedule-create">Create schedule</button>
  </form>
  <p id="schedules-message" class="message" role="status" aria-live="polite"></p>
  <p id="schedules-empty" class="hint">No schedules.</p>
  <ul id="schedules" class="schedules" aria-labelledby="schedules-title"></ul>
</section>

<section id="library" aria-labelledby="library-title">
  <h2 id="library-title">Library</h2>
  <form id="search-form" role="search">
    <label class="field" for="search-q">Find <input type="search" id="search-q" placeholder="file name or folder"></label>
    <button type="submit">Search</button>
    <label class="check" for="library-missing"><input type="checkbox" id="library-missing"> Missing only</label>
    <span id="search-total" role="status" aria-live="polite"></span>
  </form>
  <table>
    <caption id="library-range"></caption>
    <thead><tr><th scope="col">File</th><th scope="col">Resolution</th><th scope="col">Duration</th><th scope="col">Codecs</th><th scope="col">Status</th></tr></thead>
    <tbody id="videos"></tbody>
  </table>
  <nav class="pager" aria-label="Library pages">
    <button type="button" class="secondary" id="library-prev">Previous page</button>
    <button type="button" class="secondary" id="library-next">Next page</button>
  </nav>
</section>
</main>

<template id="schedule-template">
  <li class="schedule">
    <div class="scan-head">
      <h3 class="schedule-path"></h3>
      <span class="badge schedule-state"></span>
    </div>
    <p class="hint schedule-meta"></p>
    <div class="scan-actions">
      <button type="button" class="schedule-trigger">Run now</button>
      <button type="button" class="schedule-pause secondary">Pause</button>
      <button type="button" class="schedule-unpause secondary">Unpause</button>
      <button type="button" class="schedule-delete secondary">Delete</button>
    </div>
  </li>
</template>

<template id="scan-template">
  <li class="scan">
    <div class="scan-head">
      <h3 class="scan-path"></h3>
      <span class="scan-badges"><span class="badge scan-phase"></span> <span class="badge scan-status"></span></span>
    </div>
    <p class="hint scan-meta"></p>
    <progress class="scan-progress" max="1" value="0"></progress>
    <p class="scan-counts"></p>
    <p class="scan-rate"></p>
    <p class="scan-error error"></p>
    <details class="scan-errors" hidden><summary></summary><ul></ul></details>
    <div class="scan-actions">
      <button type="button" class="scan-pause secondary">Pause</button>
      <button type="button" class="scan-resume">Resume</button>
      <button type="button" class="scan-cancel">Cancel</button>
      <button type="button" class="scan-retry secondary">Retry failed files</button>
      <a class="scan-link" target="_blank" rel="noopener">open in the Temporal UI</a>
      <span class="scan-live hint"></span>
    </div>
  </li>
</template>

<script>
  const $ = (id) => document.getElementById(id);
  const ended = (status) => ['completed', 'failed', 'cancelled', 'timeout'].includes(status);
  /** At most this many event streams at once: browsers allow six connections to one server. */
  const MAX_LIVE = 4;
  /** With no stream open, how often the list is looked at for scans started elsewhere. */
  const IDLE_REFRESH_MS = 5000;
  const PAGE = 50;
  /** The library view is read again at most this often while scans record videos. */
  const LIBRARY_REFRESH_MS = 1500;
  /** How long the page waits before opening the activity feed again after it closed. */
  const FEED_RETRY_MS = 3000;

  const jobs = new Map();      // job id -> latest job body
  const streams = new Map();   // job id -> AbortController of its open event stream
  const waitUntil = new Map(); // job id -> time before which its stream is not reopened
  let idleTimer = null;
  let feed = null;             // the /ws activity feed, while open
  let feedTimer = null;
  let libraryTimer = null;
  let libraryReadAt = 0;
  const recorded = new Map();  // job id -> its new + updated count when last seen
  let library = { offset: 0, total: 0, query: '', missing: false };

  $('token').value = sessionStorage.getItem('token') || '';
  $('token-form').addEventListener('submit', (event) => event.preventDefault());
  $('token').addEventListener('change', () => {
    sessionStorage.setItem('token', $('token').value);
    closeFeed();
    refreshScans();
    loadLibrary();
    loadSchedules();
  });

  function api(path, init = {}) {
    const headers = { ...(init.headers || {}) };
    if ($('token').value) headers.authorization = 'Bearer ' + $('token').value;
    return fetch(path, { ...init, headers });
  }
  async function readJson(res) {
    const text = await res.text();
    try { return text ? JSON.parse(text) : {}; } catch { return { code: 'HTTP_' + res.status, message: text.slice(0, 200) }; }
  }
  function say(text, isError) {
    $('message').textContent = text;
    $('message').className = isError ? 'message error' : 'message';
  }
  function failure(body) {
    return (body.code || 'ERROR') + ': ' + (body.message || 'request failed');
  }

  // ---- scans ----
  function row(jobId) {
    let li = document.querySelector('#scans > li[data-job-id="' + CSS.escape(jobId) + '"]');
    if (li) return li;
    li = $('scan-template').content.firstElementChild.cloneNode(true);
    li.dataset.jobId = jobId;
    li.querySelector('.scan-cancel').addEventListener('click', () => cancel(jobId));
    li.querySelector('.scan-pause').addEventListener('click', () => pauseOrResume(jobId, 'pause'));
    li.querySelector('.scan-resume').addEventListener('click', () => pauseOrResume(jobId, 'resume'));
    li.querySelector('.scan-retry').addEventListener('click', () => retry(jobId));
    $('scans').append(li);
    return li;
  }
  function seconds(s) {
    if (s === null || s === undefined) return '';
    return s < 90 ? Math.round(s) + ' s' : Math.round(s / 60) + ' min';
  }
  function retryable(job) {
    return ended(job.status) && !(job.status === 'completed' && job.counts.failed === 0);
  }
  function render(job) {
    const li = row(job.job_id);
    const c = job.counts;
    li.dataset.status = job.status;
    li.querySelector('.scan-path').textContent = job.path;
    const status = li.querySelector('.scan-status');
    status.textContent = job.status;
    status.className = 'badge scan-status ' + job.status;
    li.dataset.phase = job.phase;
    const phase = li.querySelector('.scan-phase');
    phase.textContent = job.phase;
    phase.hidden = ended(job.status);
    phase.setAttribute('aria-label', 'phase: ' + job.phase);
    const started = new Date(job.created_at);
    const meta = [job.job_id, 'started ' + started.toLocaleString()];
    if (job.finished_at) meta.push('ended ' + new Date(job.finished_at).toLocaleString());
    if (job.retry_of) meta.push('retry of ' + job.retry_of);
    li.querySelector('.scan-meta').textContent = meta.join(' · ');
    const bar = li.querySelector('.scan-progress');
    bar.setAttribute('aria-label', 'Progress of the scan of ' + job.path);
    if (job.progress === null) bar.removeAttribute('value');
    else bar.value = job.progress;
    li.querySelector('.scan-counts').textContent = (c.probed + c.skipped) + ' of ' + c.discovered + ' done: ' + c.new + ' new, ' +
      c.updated + ' updated, ' + c.skipped + ' unchanged, ' + c.failed + ' failed' + (c.missing ? ', ' + c.missing + ' missing' : '');
    li.querySelector('.scan-rate').textContent = ended(job.status)
      ? (job.rate_per_s ? 'averaged ' + job.rate_per_s + ' files/s' : '')
      : job.status === 'paused' ? 'paused while ' + job.phase + '; Resume goes on from the next unprobed file'
      : job.phase + ', ' + job.rate_per_s + ' files/s' + (job.eta_seconds === null ? '' : ', about ' + seconds(job.eta_seconds) + ' left');
    li.querySelector('.scan-error').textContent = job.error || '';
    const errors = (job.result && job.result.errors) || [];
    const details = li.querySelector('.scan-errors');
    details.hidden = errors.length === 0;
    details.querySelector('summary').textContent = errors.length + (errors.length === 1 ? ' file' : ' files') + ' could not be recorded';
    details.querySelector('ul').replaceChildren(...errors.map((e) => {
      const item = document.createElement('li');
      item.textContent = e.path + ': ' + e.error;
      return item;
    }));
    const link = li.querySelector('.scan-link');
    if (/^https?:\\/\\//.test(job.temporal.ui_url)) link.href = job.temporal.ui_url;
    const cancelButton = li.querySelector('.scan-cancel');
    cancelButton.hidden = ended(job.status);
    cancelButton.disabled = job.cancel_requested;
    cancelButton.setAttribute('aria-label', 'Cancel the scan of ' + job.path);
    // Pause applies to a running scan only: a pending one has no worker yet (503), an ended one nothing to stop.
    const pauseButton = li.querySelector('.scan-pause');
    pauseButton.hidden = job.status !== 'running' || job.cancel_requested;
    pauseButton.setAttribute('aria-label', 'Pause the scan of ' + job.path);
    const resumeButton = li.querySelector('.scan-resume');
    resumeButton.hidden = job.status !== 'paused' || job.cancel_requested;
    resumeButton.setAttribute('aria-label', 'Resume the scan of ' + job.path);
    const retryButton = li.querySelector('.scan-retry');
    retryButton.hidden = !retryable(job);
    retryButton.setAttribute('aria-label', 'Retry the failed files of the scan of ' + job.path);
    li.querySelector('.scan-live').textContent = ended(job.status) ? '' : streams.has(job.job_id) ? 'live' : 'not followed live: more scans run than this page follows at once';
  }
  /** Running scans first, then the rest, newest first within each. */
  function order() {
    const sorted = [...jobs.values()].sort((a, b) => {
      const ea = ended(a.status) ? 1 : 0;
      const eb = ended(b.status) ? 1 : 0;
      if (ea !== eb) return ea - eb;
      return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0;
    });
    const list = $('scans');
    sorted.forEach((job, index) => {
      const li = row(job.job_id);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    });
    $('scans-empty').hidden = sorted.length > 0;
  }
  function update(job) {
    const before = jobs.get(job.job_id);
    jobs.set(job.job_id, job);
    render(job);
    if (!before || before.status !== job.status) order();
    const count = job.counts.new + job.counts.updated;
    if (!ended(job.status) && count > (recorded.get(job.job_id) ?? 0)) refreshLibrarySoon();
    recorded.set(job.job_id, count);
  }
  /** Reads the library view again, at most every LIBRARY_REFRESH_MS: videos show as the scan records them. */
  function refreshLibrarySoon() {
    if (libraryTimer !== null) return;
    const wait = Math.max(0, libraryReadAt + LIBRARY_REFRESH_MS - Date.now());
    libraryTimer = setTimeout(() => {
      libraryTimer = null;
      loadLibrary();
    }, wait);
  }

  // ---- the activity feed: scans started, paused, resumed and ended anywhere ----
  function closeFeed() {
    clearTimeout(feedTimer);
    feedTimer = null;
    if (feed) { feed.onclose = null; feed.close(); feed = null; }
  }
  /** Opens the feed; called once the API has answered (so never without a token it needs), and again after a drop. */
  function openFeed() {
    closeFeed();
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    const token = $('token').value;
    let socket;
    try {
      socket = token ? new WebSocket(url, ['bearer.' + token]) : new WebSocket(url);
    } catch (error) {
      feedTimer = setTimeout(openFeed, FEED_RETRY_MS);
      return;
    }
    feed = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      document.body.dataset.feed = 'open';
      // With the feed open the list needs no timer: the feed says when something starts. One read
      // now covers what started between the last read and the feed's opening.
      refreshScans();
    };
    socket.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      const jobId = event.payload && event.payload.job_id;
      if (!jobId) return;
      if (event.type === 'scan_started') {
        if (!jobs.has(jobId) || !ended(jobs.get(jobId).status)) track(jobId);
      } else if (!streams.has(jobId) && !(jobs.has(jobId) && ended(jobs.get(jobId).status))) {
        // Paused, resumed or ended while not followed here (its stream says so when it is): its row is read once.
        refreshJob(jobId);
        if (event.type === 'scan_completed') loadLibrary();
      }
    };
    socket.onclose = () => {
      if (feed !== socket) return;
      feed = null;
      document.body.dataset.feed = 'closed';
      // A feed that dropped is opened again; one refused at once waits for the list to answer (a token, say).
      if (opened) feedTimer = setTimeout(openFeed, FEED_RETRY_MS);
      scheduleIdleRefresh();
    };
  }
  async function refreshJob(jobId) {
    const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId));
    if (res.ok) update(await readJson(res));
    followRunning();
  }

  async function refreshScans() {
    clearTimeout(idleTimer);
    idleTimer = null;
    try {
      const res = await api('/api/v1/jobs?limit=20');
      const body = await readJson(res);
      if (!res.ok) { $('scans-note').textContent = failure(body); return; }
      $('scans-note').textContent = '';
      if (feed === null && feedTimer === null) openFeed();
      // A followed scan's stream is fresher than the list.
      const listed = body.jobs.filter((job) => !streams.has(job.job_id));
      for (const job of listed) jobs.set(job.job_id, job);
      followRunning();
      for (const job of listed) render(job);
      order();
    } catch (error) {
      $('scans-note').textContent = 'The service did not answer: ' + error.message;
    } finally {
      scheduleIdleRefresh();
    }
  }
  function scheduleIdleRefresh() {
    clearTimeout(idleTimer);
    idleTimer = null;
    const feedOpen = feed !== null && feed.readyState === WebSocket.OPEN;
    if (streams.size === 0 && !feedOpen && !document.hidden) idleTimer = setTimeout(refreshScans, IDLE_REFRESH_MS);
  }
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshScans(); });
  $('scans-refresh').addEventListener('click', refreshScans);

  function followRunning() {
    for (const job of jobs.values()) {
      if (streams.size >= MAX_LIVE) break;
      if (!ended(job.status) && !streams.has(job.job_id) && (waitUntil.get(job.job_id) || 0) <= Date.now()) follow(job.job_id);
    }
  }

  /** One Server-Sent Events block: its event name and its data, parsed. */
  function parseEvent(block) {
    let type = 'message';
    const data = [];
    for (const line of block.split('\\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    return data.length === 0 ? null : { type, job: JSON.parse(data.join('\\n')) };
  }

  /** Follows a scan through its event stream until its end event; reopens a stream that drops. */
  async function follow(jobId) {
    if (streams.has(jobId)) return;
    const controller = new AbortController();
    streams.set(jobId, controller);
    clearTimeout(idleTimer);
    idleTimer = null;
    let finished = false;
    let refused = false;
    try {
      const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId) + '/events', { signal: controller.signal, headers: { accept: 'text/event-stream' } });
      if (!res.ok) {
        const body = await readJson(res);
        $('scans-note').textContent = failure(body);
        waitUntil.set(jobId, Date.now() + IDLE_REFRESH_MS);
        refused = true;
      }
      const reader = refused ? null : res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      while (reader) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\\r\\n?/g, '\\n');
        let at;
        while ((at = buffer.indexOf('\\n\\n')) >= 0) {
          const event = parseEvent(buffer.slice(0, at));
          buffer = buffer.slice(at + 2);
          if (event === null) continue;
          update(event.job);
          if (event.type === 'end') finished = true;
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      waitUntil.set(jobId, Date.now() + 2000);
    } finally {
      if (streams.get(jobId) === controller) streams.delete(jobId);
    }
    const job = jobs.get(jobId);
    if (job) render(job);
    if (refused) {
      // Refused (no token yet, too many streams): the list is looked at again later, and the stream with it.
      scheduleIdleRefresh();
    } else if (finished) {
      // Something changed: the list (a queued scan may now be followed) and the library.
      await refreshScans();
      loadLibrary();
    } else {
      // The stream dropped (the service restarted, say): follow again shortly.
      waitUntil.set(jobId, Math.max(waitUntil.get(jobId) || 0, Date.now() + 2000));
      setTimeout(followRunning, 2000);
      scheduleIdleRefresh();
    }
  }

  /** Shows a scan that was just started (or found) and follows it. */
  async function track(jobId) {
    if (streams.size < MAX_LIVE) { follow(jobId); return; }
    const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId));
    if (res.ok) update(await readJson(res));
  }

  $('scan-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    say('', false);
    try {
      const res = await api('/api/v1/videos/scan', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: $('scan-path').value, force: $('scan-force').checked }),
      });
      const body = await readJson(res);
      if (!res.ok) { say(failure(body), true); return; }
      say(res.status === 202 ? 'Scan ' + body.job_id + ' started.' : 'Scan ' + body.job_id + ' was already running for this folder.', false);
      track(body.job_id);
    } catch (error) {
      say('The service did not answer: ' + error.message, true);
    }
  });

  async function cancel(jobId) {
    const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId) + '/cancel', { method: 'POST' });
    const body = await readJson(res);
    if (!res.ok) { say(failure(body), true); return; }
    say('Cancelling scan ' + jobId + '.', false);
    if (!streams.has(jobId)) update(body);
  }

  /** Pause or resume: the answer is the job, paused or running; a followed scan's stream brings the same. */
  async function pauseOrResume(jobId, action) {
    try {
      const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId) + '/' + action, { method: 'POST' });
      const body = await readJson(res);
      if (!res.ok) { say(failure(body), true); return; }
      say((action === 'pause' ? 'Paused scan ' : 'Resumed scan ') + jobId + '.', false);
      if (!streams.has(jobId)) update(body);
      followRunning();
    } catch (error) {
      say('The service did not answer: ' + error.message, true);
    }
  }

  async function retry(jobId) {
    const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId) + '/retry', { method: 'POST' });
    const body = await readJson(res);
    if (!res.ok) { say(failure(body), true); return; }
    say('Retry ' + body.job_id + ' of scan ' + jobId + ' started.', false);
    track(body.job_id);
  }

  // ---- library ----
  /** Object URLs of the pictures on the page: released when the page of videos is replaced. */
  let pictureUrls = [];
  /** Why 300px: a picture is asked for a little before its row scrolls into view. */
  const pictures = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      pictures.unobserve(entry.target);
      loadPicture(entry.target);
    }
  }, { rootMargin: '300px 0px' });
  async function loadPicture(img) {
    try {
      const res = await api(img.dataset.src);
      if (!res.ok) { img.dataset.thumbnail = 'error'; return; }
      const blob = await res.blob();
      if (!img.isConnected) return;
      const url = URL.createObjectURL(blob);
      pictureUrls.push(url);
      img.dataset.thumbnail = res.headers.get('x-thumbnail') || 'video';
      img.src = url;
    } catch (error) {
      img.dataset.thumbnail = 'error';
    }
  }
  function releasePictures() {
    pictures.disconnect();
    for (const url of pictureUrls) URL.revokeObjectURL(url);
    pictureUrls = [];
  }
  /** The video's path, with its picture (the placeholder until the scan has made it). */
  function fileCell(v) {
    const img = document.createElement('img');
    img.className = 'thumb';
    img.alt = '';
    img.width = 160;
    img.height = 90;
    img.dataset.src = '/api/v1/videos/' + encodeURIComponent(v.id) + '/thumbnail';
    pictures.observe(img);
    const name = document.createElement('span');
    name.textContent = v.path;
    const box = document.createElement('div');
    box.className = 'video-file';
    box.append(img, name);
    const td = document.createElement('td');
    td.append(box);
    return td;
  }
  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }
  function statusCell(v) {
    if (v.status !== 'missing') return cell(v.status);
    const td = cell('missing');
    if (v.missing_since) {
      const since = document.createElement('time');
      since.dateTime = v.missing_since;
      since.textContent = new Date(v.missing_since).toLocaleString();
      td.append(' since ', since);
    }
    return td;
  }
  async function loadLibrary() {
    libraryReadAt = Date.now();
    const q = library.query;
    const paging = 'limit=' + PAGE + '&offset=' + library.offset;
    // The search has no status filter: "Missing only" lists the whole library's missing videos.
    const url = library.missing ? '/api/v1/videos?status=missing&' + paging
      : q ? '/api/v1/videos/search?q=' + encodeURIComponent(q) + '&' + paging : '/api/v1/videos?' + paging;
    try {
      const res = await api(url);
      const body = await readJson(res);
      if (!res.ok) { $('search-total').textContent = failure(body); return; }
      library.total = body.total;
      $('search-total').textContent = body.total + (body.total === 1 ? ' video' : ' videos') + (library.missing ? ' missing' : q ? ' match' : '');
      const first = body.videos.length === 0 ? 0 : library.offset + 1;
      $('library-range').textContent = body.videos.length === 0 ? 'No videos' : 'Videos ' + first + '–' + (library.offset + body.videos.length) + ' of ' + body.total;
      $('library-prev').disabled = library.offset === 0;
      $('library-next').disabled = library.offset + PAGE >= body.total;
      releasePictures();
      $('videos').replaceChildren(...body.videos.map((v) => {
        const tr = document.createElement('tr');
        tr.append(
          fileCell(v),
          cell(v.width ? v.width + '×' + v.height : ''),
          cell(v.duration_seconds === null ? '' : v.duration_seconds.toFixed(1) + ' s'),
          cell([v.video_codec, v.audio_codec].filter(Boolean).join(' / ')),
          statusCell(v),
        );
        return tr;
      }));
    } catch (error) {
      $('search-total').textContent = 'The service did not answer: ' + error.message;
    }
  }
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    $('library-missing').checked = false;
    library = { offset: 0, total: 0, query: $('search-q').value.trim(), missing: false };
    loadLibrary();
  });
  $('library-missing').addEventListener('change', () => {
    library = { offset: 0, total: 0, query: library.query, missing: $('library-missing').checked };
    loadLibrary();
  });
  $('library-prev').addEventListener('click', () => {
    library.offset = Math.max(0, library.offset - PAGE);
    loadLibrary();
  });
  $('library-next').addEventListener('click', () => {
    if (library.offset + PAGE < library.total) library.offset += PAGE;
    loadLibrary();
  });

  // ---- schedules ----
  function sayAboutSchedules(text, isError) {
    $('schedules-message').textContent = text;
    $('schedules-message').className = isError ? 'message error' : 'message';
  }
  function renderSchedule(schedule) {
    const li = $('schedule-template').content.firstElementChild.cloneNode(true);
    const id = schedule.schedule_id;
    li.dataset.scheduleId = id;
    li.querySelector('.schedule-path').textContent = schedule.path;
    const state = li.querySelector('.schedule-state');
    state.textContent = schedule.paused ? 'paused' : 'active';
    state.className = 'badge schedule-state ' + (schedule.paused ? 'paused' : 'running');
    const meta = [id, schedule.every ? 'every ' + schedule.every : 'cron ' + schedule.cron];
    if (schedule.next_run_at && !schedule.paused) meta.push('next run ' + new Date(schedule.next_run_at).toLocaleString());
    if (schedule.last_job_id) meta.push('last scan ' + schedule.last_job_id);
    li.querySelector('.schedule-meta').textContent = meta.join(' · ');
    const buttons = [
      ['.schedule-trigger', 'Run the schedule of ', () => scheduleAction(id, 'trigger')],
      ['.schedule-pause', 'Pause the schedule of ', () => scheduleAction(id, 'pause')],
      ['.schedule-unpause', 'Unpause the schedule of ', () => scheduleAction(id, 'unpause')],
      ['.schedule-delete', 'Delete the schedule of ', () => scheduleAction(id, 'delete')],
    ];
    for (const [selector, label, action] of buttons) {
      const button = li.querySelector(selector);
      button.setAttribute('aria-label', label + schedule.path + (selector === '.schedule-trigger' ? ' now' : ''));
      button.addEventListener('click', action);
    }
    li.querySelector('.schedule-pause').hidden = schedule.paused;
    li.querySelector('.schedule-unpause').hidden = !schedule.paused;
    return li;
  }
  async function loadSchedules() {
    try {
      const res = await api('/api/v1/schedules');
      const body = await readJson(res);
      if (!res.ok) { sayAboutSchedules(failure(body), true); return; }
      $('schedules').replaceChildren(...body.schedules.map(renderSchedule));
      $('schedules-empty').hidden = body.schedules.length > 0;
    } catch (error) {
      sayAboutSchedules('The service did not answer: ' + error.message, true);
    }
  }
  async function scheduleAction(id, action) {
    const url = '/api/v1/schedules/' + encodeURIComponent(id) + (action === 'delete' ? '' : '/' + action);
    try {
      const res = await api(url, { method: action === 'delete' ? 'DELETE' : 'POST' });
      const body = res.status === 204 ? {} : await readJson(res);
      if (!res.ok) { sayAboutSchedules(failure(body), true); return; }
      if (action === 'trigger') {
        sayAboutSchedules('Scan ' + body.job_id + ' started by schedule ' + id + '.', false);
        track(body.job_id);
      } else {
        sayAboutSchedules('Schedule ' + id + (action === 'delete' ? ' deleted.' : action === 'pause' ? ' paused.' : ' unpaused.'), false);
      }
    } catch (error) {
      sayAboutSchedules('The service did not answer: ' + error.message, true);
    }
    loadSchedules();
  }
  $('schedule-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    sayAboutSchedules('', false);
    try {
      const res = await api('/api/v1/schedules', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: $('schedule-path').value, every: $('schedule-every').value.trim() }),
      });
      const body = await readJson(res);
      if (!res.ok) { sayAboutSchedules(failure(body), true); return; }
      sayAboutSchedules('Schedule ' + body.schedule_id + ' created.', false);
    } catch (error) {
      sayAboutSchedules('The service did not answer: ' + error.message, true);
    }
    loadSchedules();
  });
  $('schedules-refresh').addEventListener('click', loadSchedules);

  refreshScans();
  loadLibrary();
  loadSchedules();
</script>
</body>
</html>
`;
