// @ts-check
/**
 * What every part of the dashboard shares: the types of what the API sends,
 * the page's elements looked up by id and class, and calls to the API with the
 * token the page was given.
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
export function $(id, type) {
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
export function part(root, selector, type) {
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

export const tokenInput = $('token', HTMLInputElement);

/**
 * A call to the API, with the token when one is set.
 * @param {string} path
 * @param {RequestInit & { headers?: Record<string, string> }} [init]
 */
export function api(path, init = {}) {
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
export async function readJson(res) {
  const text = await res.text();
  try { return text ? JSON.parse(text) : /** @type {T} */ ({}); } catch { return /** @type {T} */ ({ code: 'HTTP_' + res.status, message: text.slice(0, 200) }); }
}
/** @param {unknown} error */
export function unanswered(error) {
  return 'The service did not answer: ' + (error instanceof Error ? error.message : String(error));
}
/**
 * @param {HTMLElement} element
 * @param {string} text
 * @param {boolean} isError
 */
export function tell(element, text, isError) {
  element.textContent = text;
  element.className = isError ? 'message error' : 'message';
}
/**
 * @param {string} text
 * @param {boolean} isError
 */
export function say(text, isError) {
  tell($('message'), text, isError);
}
/** @param {ErrorBody} body */
export function failure(body) {
  return (body.code || 'ERROR') + ': ' + (body.message || 'request failed');
}
/**
 * A fresh copy of a <template>'s first element.
 * @param {string} id
 */
export function instantiate(id) {
  const copy = $(id, HTMLTemplateElement).content.firstElementChild?.cloneNode(true);
  if (!(copy instanceof HTMLLIElement)) throw new Error('template #' + id + ' holds no <li>');
  return copy;
}
