// @ts-check
/**
 * The dashboard's entry module: the page (index.html, dashboard.css, and the
 * modules scans.js, library.js and schedules.js, each wiring its section, with
 * page.js for what they share), served as written by src/api/dashboard.ts. It
 * talks through the same REST API as every other client (with the bearer
 * token, when the service asks for one).
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

import { $, tokenInput } from './page.js';
import { closeFeed, refreshScans } from './scans.js';
import { loadLibrary } from './library.js';
import { loadSchedules } from './schedules.js';

tokenInput.value = sessionStorage.getItem('token') || '';
$('token-form').addEventListener('submit', (event) => event.preventDefault());
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem('token', tokenInput.value);
  closeFeed();
  refreshScans();
  loadLibrary();
  loadSchedules();
});

refreshScans();
loadLibrary();
loadSchedules();
