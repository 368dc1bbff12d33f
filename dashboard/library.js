// @ts-check
/**
 * The library: search and paging, or only the videos whose files are gone,
 * each with its picture, fetched with the token once its row comes near.
 */

import { $, api, failure, readJson, unanswered } from './page.js';

/** @typedef {import('./page.js').Video} Video */

/** Videos per page of the library. */
const PAGE = 50;
/** The library view is read again at most this often while scans record videos. */
const LIBRARY_REFRESH_MS = 1500;

/** @type {ReturnType<typeof setTimeout> | undefined} */
let libraryTimer;
let libraryReadAt = 0;
let library = { offset: 0, total: 0, query: '', missing: false };

/** Reads the library view again, at most every LIBRARY_REFRESH_MS: videos show as the scan records them. */
export function refreshLibrarySoon() {
  if (libraryTimer !== undefined) return;
  const wait = Math.max(0, libraryReadAt + LIBRARY_REFRESH_MS - Date.now());
  libraryTimer = setTimeout(() => {
    libraryTimer = undefined;
    loadLibrary();
  }, wait);
}

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
export async function loadLibrary() {
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
