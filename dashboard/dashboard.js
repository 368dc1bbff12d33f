// @ts-check
/**
 * The dashboard's script (index.html and dashboard.css beside it, served by
 * src/api/dashboard.ts), talking through the same REST API as every
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

// ---- what the API sends (API.md): only the fields this page reads ----
/**
 * @typedef {'pending' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'timeout'} JobStatus
 * @typedef {{ discovered: number, probed: number, skipped: number, new: number, updated: number, failed: number, missing?: number }} Counts
 * @typedef {{
 *   job_id: string, status: JobStatus, phase: string, path: string, progress: number | null,
 *   counts: Counts, rate_per_s: number, eta_seconds: number | null, error: string | null,
 *   result: { errors?: { path: string, error: string }[] } | null,
 *   cancel_requested: boolean, retry_of: string | null, created_at: string, finished_at: string | null,
 *   temporal: { ui_url: string },
 * }} Job
 * @typedef {{
 *   id: number, path: string, status: string, missing_since: string | null, width: number | null, height: number | null,
 *   duration_seconds: number | null, video_codec: string | null, audio_codec: string | null,
 * }} Video
 * @typedef {{
 *   schedule_id: string, path: string, paused: boolean, every: string | null, cron: string | null,
 *   next_run_at: string | null, last_job_id: string | null,
 * }} Schedule
 * @typedef {{ code?: string, message?: string }} ErrorBody
 * @typedef {{ type: string, payload?: { job_id?: string } }} FeedEvent
 */

/**
 * The page's element with this id, of the class its HTML gives it.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {new () => T} [type]
 * @returns {T}
 */
function $(id, type) {
  return checked(document.getElementById(id), type, '#' + id);
}
/**
 * The element under `root` that `selector` names, of the class the page's templates give it.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {ParentNode} root
 * @param {string} selector
 * @param {new () => T} [type]
 * @returns {T}
 */
function part(root, selector, type) {
  return checked(root.querySelector(selector), type, selector);
}
/**
 * @template {HTMLElement} T
 * @param {Element | null} found
 * @param {(new () => T) | undefined} type
 * @param {string} name
 * @returns {T}
 */
function checked(found, type, name) {
  if (!(found instanceof (type ?? HTMLElement))) throw new Error('the page has no element ' + name);
  return /** @type {T} */ (found);
}

/** @param {JobStatus} status */
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

const tokenInput = $('token', HTMLInputElement);
/** @type {Map<string, Job>} job id -> latest job body */
const jobs = new Map();
/** @type {Map<string, AbortController>} job id -> the controller of its open event stream */
const streams = new Map();
/** @type {Map<string, number>} job id -> time before which its stream is not reopened */
const waitUntil = new Map();
/** @type {ReturnType<typeof setTimeout> | undefined} */
let idleTimer;
/** @type {WebSocket | null} the /ws activity feed, while open */
let feed = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let feedTimer;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let libraryTimer;
let libraryReadAt = 0;
/** @type {Map<string, number>} job id -> its new + updated count when last seen */
const recorded = new Map();
let library = { offset: 0, total: 0, query: '', missing: false };

tokenInput.value = sessionStorage.getItem('token') || '';
$('token-form').addEventListener('submit', (event) => event.preventDefault());
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem('token', tokenInput.value);
  closeFeed();
  refreshScans();
  loadLibrary();
  loadSchedules();
});

/**
 * A call to the API, with the token when one is set.
 * @param {string} path
 * @param {RequestInit & { headers?: Record<string, string> }} [init]
 */
function api(path, init = {}) {
  /** @type {Record<string, string>} */
  const headers = { ...(init.headers || {}) };
  if (tokenInput.value) headers.authorization = 'Bearer ' + tokenInput.value;
  return fetch(path, { ...init, headers });
}
/**
 * The body of an answer: its JSON, or the start of its text as an error.
 * The page trusts the API to send the shape API.md gives the route it called.
 * @template [T=ErrorBody]
 * @param {Response} res
 * @returns {Promise<T>}
 */
async function readJson(res) {
  const text = await res.text();
  try { return text ? JSON.parse(text) : /** @type {T} */ ({}); } catch { return /** @type {T} */ ({ code: 'HTTP_' + res.status, message: text.slice(0, 200) }); }
}
/** @param {unknown} error */
function unanswered(error) {
  return 'The service did not answer: ' + (error instanceof Error ? error.message : String(error));
}
/**
 * @param {HTMLElement} element
 * @param {string} text
 * @param {boolean} isError
 */
function tell(element, text, isError) {
  element.textContent = text;
  element.className = isError ? 'message error' : 'message';
}
/**
 * @param {string} text
 * @param {boolean} isError
 */
function say(text, isError) {
  tell($('message'), text, isError);
}
/** @param {ErrorBody} body */
function failure(body) {
  return (body.code || 'ERROR') + ': ' + (body.message || 'request failed');
}
/**
 * A fresh copy of a <template>'s first element.
 * @param {string} id
 */
function instantiate(id) {
  const copy = $(id, HTMLTemplateElement).content.firstElementChild?.cloneNode(true);
  if (!(copy instanceof HTMLLIElement)) throw new Error('template #' + id + ' holds no <li>');
  return copy;
}

// ---- scans ----
/** @param {string} jobId */
function row(jobId) {
  const found = document.querySelector('#scans > li[data-job-id="' + CSS.escape(jobId) + '"]');
  if (found instanceof HTMLLIElement) return found;
  const li = instantiate('scan-template');
  li.dataset.jobId = jobId;
  part(li, '.scan-cancel').addEventListener('click', () => cancel(jobId));
  part(li, '.scan-pause').addEventListener('click', () => pauseOrResume(jobId, 'pause'));
  part(li, '.scan-resume').addEventListener('click', () => pauseOrResume(jobId, 'resume'));
  part(li, '.scan-retry').addEventListener('click', () => retry(jobId));
  $('scans').append(li);
  return li;
}
/** @param {number | null} s */
function seconds(s) {
  if (s === null || s === undefined) return '';
  return s < 90 ? Math.round(s) + ' s' : Math.round(s / 60) + ' min';
}
/** @param {Job} job */
function retryable(job) {
  return ended(job.status) && !(job.status === 'completed' && job.counts.failed === 0);
}
/** @param {Job} job */
function render(job) {
  const li = row(job.job_id);
  const c = job.counts;
  li.dataset.status = job.status;
  part(li, '.scan-path').textContent = job.path;
  const status = part(li, '.scan-status');
  status.textContent = job.status;
  status.className = 'badge scan-status ' + job.status;
  li.dataset.phase = job.phase;
  const phase = part(li, '.scan-phase');
  phase.textContent = job.phase;
  phase.hidden = ended(job.status);
  phase.setAttribute('aria-label', 'phase: ' + job.phase);
  const started = new Date(job.created_at);
  const meta = [job.job_id, 'started ' + started.toLocaleString()];
  if (job.finished_at) meta.push('ended ' + new Date(job.finished_at).toLocaleString());
  if (job.retry_of) meta.push('retry of ' + job.retry_of);
  part(li, '.scan-meta').textContent = meta.join(' · ');
  const bar = part(li, '.scan-progress', HTMLProgressElement);
  bar.setAttribute('aria-label', 'Progress of the scan of ' + job.path);
  if (job.progress === null) bar.removeAttribute('value');
  else bar.value = job.progress;
  part(li, '.scan-counts').textContent = (c.probed + c.skipped) + ' of ' + c.discovered + ' done: ' + c.new + ' new, ' +
    c.updated + ' updated, ' + c.skipped + ' unchanged, ' + c.failed + ' failed' + (c.missing ? ', ' + c.missing + ' missing' : '');
  part(li, '.scan-rate').textContent = ended(job.status)
    ? (job.rate_per_s ? 'averaged ' + job.rate_per_s + ' files/s' : '')
    : job.status === 'paused' ? 'paused while ' + job.phase + '; Resume goes on from the next unprobed file'
    : job.phase + ', ' + job.rate_per_s + ' files/s' + (job.eta_seconds === null ? '' : ', about ' + seconds(job.eta_seconds) + ' left');
  part(li, '.scan-error').textContent = job.error || '';
  const errors = (job.result && job.result.errors) || [];
  const details = part(li, '.scan-errors');
  details.hidden = errors.length === 0;
  part(details, 'summary').textContent = errors.length + (errors.length === 1 ? ' file' : ' files') + ' could not be recorded';
  part(details, 'ul').replaceChildren(...errors.map((e) => {
    const item = document.createElement('li');
    item.textContent = e.path + ': ' + e.error;
    return item;
  }));
  const link = part(li, '.scan-link', HTMLAnchorElement);
  if (/^https?:\/\//.test(job.temporal.ui_url)) link.href = job.temporal.ui_url;
  const cancelButton = part(li, '.scan-cancel', HTMLButtonElement);
  cancelButton.hidden = ended(job.status);
  cancelButton.disabled = job.cancel_requested;
  cancelButton.setAttribute('aria-label', 'Cancel the scan of ' + job.path);
  // Pause applies to a running scan only: a pending one has no worker yet (503), an ended one nothing to stop.
  const pauseButton = part(li, '.scan-pause');
  pauseButton.hidden = job.status !== 'running' || job.cancel_requested;
  pauseButton.setAttribute('aria-label', 'Pause the scan of ' + job.path);
  const resumeButton = part(li, '.scan-resume');
  resumeButton.hidden = job.status !== 'paused' || job.cancel_requested;
  resumeButton.setAttribute('aria-label', 'Resume the scan of ' + job.path);
  const retryButton = part(li, '.scan-retry');
  retryButton.hidden = !retryable(job);
  retryButton.setAttribute('aria-label', 'Retry the failed files of the scan of ' + job.path);
  part(li, '.scan-live').textContent = ended(job.status) ? '' : streams.has(job.job_id) ? 'live' : 'not followed live: more scans run than this page follows at once';
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
/** @param {Job} job */
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
  if (libraryTimer !== undefined) return;
  const wait = Math.max(0, libraryReadAt + LIBRARY_REFRESH_MS - Date.now());
  libraryTimer = setTimeout(() => {
    libraryTimer = undefined;
    loadLibrary();
  }, wait);
}

// ---- the activity feed: scans started, paused, resumed and ended anywhere ----
function closeFeed() {
  clearTimeout(feedTimer);
  feedTimer = undefined;
  if (feed) { feed.onclose = null; feed.close(); feed = null; }
}
/** Opens the feed; called once the API has answered (so never without a token it needs), and again after a drop. */
function openFeed() {
  closeFeed();
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  const token = tokenInput.value;
  /** @type {WebSocket} */
  let socket;
  try {
    socket = token ? new WebSocket(url, ['bearer.' + token]) : new WebSocket(url);
  } catch {
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
    /** @type {FeedEvent} */
    let event;
    try { event = JSON.parse(String(message.data)); } catch { return; }
    const jobId = event.payload && event.payload.job_id;
    if (!jobId) return;
    const known = jobs.get(jobId);
    if (event.type === 'scan_started') {
      if (!known || !ended(known.status)) track(jobId);
    } else if (!streams.has(jobId) && !(known && ended(known.status))) {
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
/** @param {string} jobId */
async function refreshJob(jobId) {
  const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId));
  if (res.ok) update(await readJson(res));
  followRunning();
}

async function refreshScans() {
  clearTimeout(idleTimer);
  idleTimer = undefined;
  try {
    const res = await api('/api/v1/jobs?limit=20');
    if (!res.ok) { $('scans-note').textContent = failure(await readJson(res)); return; }
    /** @type {{ jobs: Job[] }} */
    const body = await readJson(res);
    $('scans-note').textContent = '';
    if (feed === null && feedTimer === undefined) openFeed();
    // A followed scan's stream is fresher than the list.
    const listed = body.jobs.filter((job) => !streams.has(job.job_id));
    for (const job of listed) jobs.set(job.job_id, job);
    followRunning();
    for (const job of listed) render(job);
    order();
  } catch (error) {
    $('scans-note').textContent = unanswered(error);
  } finally {
    scheduleIdleRefresh();
  }
}
function scheduleIdleRefresh() {
  clearTimeout(idleTimer);
  idleTimer = undefined;
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

/**
 * One Server-Sent Events block: its event name and its data, parsed.
 * @param {string} block
 * @returns {{ type: string, job: Job } | null}
 */
function parseEvent(block) {
  let type = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  return data.length === 0 ? null : { type, job: JSON.parse(data.join('\n')) };
}

/**
 * Follows a scan through its event stream until its end event; reopens a stream that drops.
 * @param {string} jobId
 */
async function follow(jobId) {
  if (streams.has(jobId)) return;
  const controller = new AbortController();
  streams.set(jobId, controller);
  clearTimeout(idleTimer);
  idleTimer = undefined;
  let finished = false;
  let refused = false;
  try {
    const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId) + '/events', { signal: controller.signal, headers: { accept: 'text/event-stream' } });
    if (!res.ok || res.body === null) {
      $('scans-note').textContent = failure(await readJson(res));
      waitUntil.set(jobId, Date.now() + IDLE_REFRESH_MS);
      refused = true;
    }
    const reader = refused || res.body === null ? null : res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    while (reader) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, '\n');
      let at;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const event = parseEvent(buffer.slice(0, at));
        buffer = buffer.slice(at + 2);
        if (event === null) continue;
        update(event.job);
        if (event.type === 'end') finished = true;
      }
    }
  } catch {
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

/**
 * Shows a scan that was just started (or found) and follows it.
 * @param {string} jobId
 */
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
      body: JSON.stringify({ path: $('scan-path', HTMLInputElement).value, force: $('scan-force', HTMLInputElement).checked }),
    });
    if (!res.ok) { say(failure(await readJson(res)), true); return; }
    /** @type {{ job_id: string }} */
    const body = await readJson(res);
    say(res.status === 202 ? 'Scan ' + body.job_id + ' started.' : 'Scan ' + body.job_id + ' was already running for this folder.', false);
    track(body.job_id);
  } catch (error) {
    say(unanswered(error), true);
  }
});

/** @param {string} jobId */
async function cancel(jobId) {
  const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId) + '/cancel', { method: 'POST' });
  if (!res.ok) { say(failure(await readJson(res)), true); return; }
  /** @type {Job} */
  const body = await readJson(res);
  say('Cancelling scan ' + jobId + '.', false);
  if (!streams.has(jobId)) update(body);
}

/**
 * Pause or resume: the answer is the job, paused or running; a followed scan's stream brings the same.
 * @param {string} jobId
 * @param {'pause' | 'resume'} action
 */
async function pauseOrResume(jobId, action) {
  try {
    const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId) + '/' + action, { method: 'POST' });
    if (!res.ok) { say(failure(await readJson(res)), true); return; }
    /** @type {Job} */
    const body = await readJson(res);
    say((action === 'pause' ? 'Paused scan ' : 'Resumed scan ') + jobId + '.', false);
    if (!streams.has(jobId)) update(body);
    followRunning();
  } catch (error) {
    say(unanswered(error), true);
  }
}

/** @param {string} jobId */
async function retry(jobId) {
  const res = await api('/api/v1/jobs/' + encodeURIComponent(jobId) + '/retry', { method: 'POST' });
  if (!res.ok) { say(failure(await readJson(res)), true); return; }
  /** @type {{ job_id: string }} */
  const body = await readJson(res);
  say('Retry ' + body.job_id + ' of scan ' + jobId + ' started.', false);
  track(body.job_id);
}

// ---- library ----
/** @type {string[]} Object URLs of the pictures on the page: released when the page of videos is replaced. */
let pictureUrls = [];
/** Why 300px: a picture is asked for a little before its row scrolls into view. */
const pictures = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting || !(entry.target instanceof HTMLImageElement)) continue;
    pictures.unobserve(entry.target);
    loadPicture(entry.target);
  }
}, { rootMargin: '300px 0px' });
/** @param {HTMLImageElement} img */
async function loadPicture(img) {
  try {
    const res = await api(img.dataset.src ?? '');
    if (!res.ok) { img.dataset.thumbnail = 'error'; return; }
    const blob = await res.blob();
    if (!img.isConnected) return;
    const url = URL.createObjectURL(blob);
    pictureUrls.push(url);
    img.dataset.thumbnail = res.headers.get('x-thumbnail') || 'video';
    img.src = url;
  } catch {
    img.dataset.thumbnail = 'error';
  }
}
function releasePictures() {
  pictures.disconnect();
  for (const url of pictureUrls) URL.revokeObjectURL(url);
  pictureUrls = [];
}
/**
 * The video's path, with its picture (the placeholder until the scan has made it).
 * @param {Video} v
 */
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
/** @param {string} text */
function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}
/** @param {Video} v */
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
    if (!res.ok) { $('search-total').textContent = failure(await readJson(res)); return; }
    /** @type {{ total: number, videos: Video[] }} */
    const body = await readJson(res);
    library.total = body.total;
    $('search-total').textContent = body.total + (body.total === 1 ? ' video' : ' videos') + (library.missing ? ' missing' : q ? ' match' : '');
    const first = body.videos.length === 0 ? 0 : library.offset + 1;
    $('library-range').textContent = body.videos.length === 0 ? 'No videos' : 'Videos ' + first + '–' + (library.offset + body.videos.length) + ' of ' + body.total;
    $('library-prev', HTMLButtonElement).disabled = library.offset === 0;
    $('library-next', HTMLButtonElement).disabled = library.offset + PAGE >= body.total;
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
    $('search-total').textContent = unanswered(error);
  }
}
$('search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  $('library-missing', HTMLInputElement).checked = false;
  library = { offset: 0, total: 0, query: $('search-q', HTMLInputElement).value.trim(), missing: false };
  loadLibrary();
});
$('library-missing').addEventListener('change', () => {
  library = { offset: 0, total: 0, query: library.query, missing: $('library-missing', HTMLInputElement).checked };
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
/**
 * @param {string} text
 * @param {boolean} isError
 */
function sayAboutSchedules(text, isError) {
  tell($('schedules-message'), text, isError);
}
/** @param {Schedule} schedule */
function renderSchedule(schedule) {
  const li = instantiate('schedule-template');
  const id = schedule.schedule_id;
  li.dataset.scheduleId = id;
  part(li, '.schedule-path').textContent = schedule.path;
  const state = part(li, '.schedule-state');
  state.textContent = schedule.paused ? 'paused' : 'active';
  state.className = 'badge schedule-state ' + (schedule.paused ? 'paused' : 'running');
  const meta = [id, schedule.every ? 'every ' + schedule.every : 'cron ' + schedule.cron];
  if (schedule.next_run_at && !schedule.paused) meta.push('next run ' + new Date(schedule.next_run_at).toLocaleString());
  if (schedule.last_job_id) meta.push('last scan ' + schedule.last_job_id);
  part(li, '.schedule-meta').textContent = meta.join(' · ');
  /** @type {[string, string, () => void][]} */
  const buttons = [
    ['.schedule-trigger', 'Run the schedule of ', () => scheduleAction(id, 'trigger')],
    ['.schedule-pause', 'Pause the schedule of ', () => scheduleAction(id, 'pause')],
    ['.schedule-unpause', 'Unpause the schedule of ', () => scheduleAction(id, 'unpause')],
    ['.schedule-delete', 'Delete the schedule of ', () => scheduleAction(id, 'delete')],
  ];
  for (const [selector, label, action] of buttons) {
    const button = part(li, selector);
    button.setAttribute('aria-label', label + schedule.path + (selector === '.schedule-trigger' ? ' now' : ''));
    button.addEventListener('click', action);
  }
  part(li, '.schedule-pause').hidden = schedule.paused;
  part(li, '.schedule-unpause').hidden = !schedule.paused;
  return li;
}
async function loadSchedules() {
  try {
    const res = await api('/api/v1/schedules');
    if (!res.ok) { sayAboutSchedules(failure(await readJson(res)), true); return; }
    /** @type {{ schedules: Schedule[] }} */
    const body = await readJson(res);
    $('schedules').replaceChildren(...body.schedules.map(renderSchedule));
    $('schedules-empty').hidden = body.schedules.length > 0;
  } catch (error) {
    sayAboutSchedules(unanswered(error), true);
  }
}
/**
 * @param {string} id
 * @param {'trigger' | 'pause' | 'unpause' | 'delete'} action
 */
async function scheduleAction(id, action) {
  const url = '/api/v1/schedules/' + encodeURIComponent(id) + (action === 'delete' ? '' : '/' + action);
  try {
    const res = await api(url, { method: action === 'delete' ? 'DELETE' : 'POST' });
    if (!res.ok) { sayAboutSchedules(failure(await readJson(res)), true); return; }
    if (action === 'trigger') {
      /** @type {{ job_id: string }} */
      const body = await readJson(res);
      sayAboutSchedules('Scan ' + body.job_id + ' started by schedule ' + id + '.', false);
      track(body.job_id);
    } else {
      sayAboutSchedules('Schedule ' + id + (action === 'delete' ? ' deleted.' : action === 'pause' ? ' paused.' : ' unpaused.'), false);
    }
  } catch (error) {
    sayAboutSchedules(unanswered(error), true);
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
      body: JSON.stringify({ path: $('schedule-path', HTMLInputElement).value, every: $('schedule-every', HTMLInputElement).value.trim() }),
    });
    if (!res.ok) { sayAboutSchedules(failure(await readJson(res)), true); return; }
    /** @type {{ schedule_id: string }} */
    const body = await readJson(res);
    sayAboutSchedules('Schedule ' + body.schedule_id + ' created.', false);
  } catch (error) {
    sayAboutSchedules(unanswered(error), true);
  }
  loadSchedules();
});
$('schedules-refresh').addEventListener('click', loadSchedules);

refreshScans();
loadLibrary();
loadSchedules();
