// @ts-check
/**
 * Scan schedules: list, create (folder and interval), run now, pause, unpause,
 * delete. The list is read on load and after each change, never on a timer.
 */

import { $, api, failure, instantiate, part, readJson, tell, unanswered } from './page.js';
import { track } from './scans.js';

/** @typedef {import('./page.js').Schedule} Schedule */

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
export async function loadSchedules() {
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
