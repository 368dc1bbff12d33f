// @ts-check
/**
 * The scans: running ones first, then recent ones with their outcome, each
 * running one followed through its event stream, others learned from the
 * activity feed at /ws; cancel, pause, resume and retry.
 */

import { $, api, failure, instantiate, part, readJson, say, tokenInput, unanswered } from './page.js';
import { loadLibrary, refreshLibrarySoon } from './library.js';

/**
 * @typedef {import('./page.js').Job} Job
 * @typedef {import('./page.js').JobStatus} JobStatus
 * @typedef {import('./page.js').FeedEvent} FeedEvent
 */

/** @param {JobStatus} status */
const ended = (status) => ['completed', 'failed', 'cancelled', 'timeout'].includes(status);
/** At most this many event streams at once: browsers allow six connections to one server. */
const MAX_LIVE = 4;
/** With no stream open, how often the list is looked at for scans started elsewhere. */
const IDLE_REFRESH_MS = 5000;
/** How long the page waits before opening the activity feed again after it closed. */
const FEED_RETRY_MS = 3000;

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
/** @type {Map<string, number>} job id -> its new + updated count when last seen */
const recorded = new Map();

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

// ---- the activity feed: scans started, paused, resumed and ended anywhere ----
export function closeFeed() {
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

export async function refreshScans() {
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
export async function track(jobId) {
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
