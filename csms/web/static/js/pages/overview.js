// Overview: network counters, updated live from the event stream without a reload.
import {api} from '../api.js';
import {h, routeHref} from '../dom.js';
import {big, dateTime, num, t, tOr} from '../i18n.js';
import {errorBox, header} from './common.js';

const REFRESH_KINDS = new Set(['open', 'dropped', 'status', 'fault', 'fault_opened', 'fault_closed', 'session_started',
  'session_stopped', 'charger_connected', 'charger_disconnected']);

function card(title, main, caption, rows, cls) {
  return h('section', {class: 'card stat ' + (cls || '')}, h('h2', null, title),
    h('p', {class: 'big'}, main, h('span', {class: 'caption'}, caption)),
    rows ? h('dl', {class: 'pairs'}, rows.flatMap(([k, v, key]) => [h('dt', null, k), h('dd', {dataset: {key}}, v)])) : null);
}

function counters(o) {
  const c = o.connectors;
  return h('div', {class: 'stats'},
    card(t('ov.chargers'), [h('span', {dataset: {key: 'chargers-online'}}, num(o.chargers.online)),
      h('span', {class: 'of'}, ` / ${num(o.chargers.total)}`)], t('ov.online'), [
      [t('ov.online'), num(o.chargers.online), 'online'],
      [t('ov.offline'), num(o.chargers.offline), 'offline'],
    ], 'chargers'),
    card(t('ov.connectors'), h('span', {dataset: {key: 'connectors-charging'}}, num(c.charging)), t('ov.charging'), [
      [t('ov.available'), num(c.available), 'available'],
      [t('ov.charging'), num(c.charging), 'charging'],
      [t('ov.faulted'), num(c.faulted), 'faulted'],
      [t('ov.unavailable'), num(c.unavailable), 'unavailable'],
      [t('ov.conn_offline'), num(c.offline), 'conn-offline'],
    ], 'connectors'),
    card(t('ov.today'), h('span', {dataset: {key: 'energy-today'}}, big(o.energy_today_kwh)), t('unit.kwh'), [
      [t('ov.sessions_today'), num(o.sessions_today), 'sessions'],
      [t('ov.energy_today'), `${big(o.energy_today_kwh)} ${t('unit.kwh')}`, 'energy'],
      [t('ov.open_sessions'), num(o.open_sessions), 'open-sessions'],
    ], 'today'),
    card(t('ov.open_faults'), h('a', {href: '#/faults?status=open', dataset: {key: 'open-faults'}}, num(o.open_faults)), '', [
      [t('ov.stations'), num(o.stations), 'stations'],
    ], o.open_faults ? 'faults alert' : 'faults'));
}

function eventLine(kind, e) {
  const bits = [];
  if (e.connector_id !== undefined && e.connector_id !== null) bits.push(`#${e.connector_id}`);
  if (e.status) bits.push(tOr('conn.' + e.status, e.status));
  if (e.error_code && e.error_code !== 'NoError') bits.push(e.error_code);
  if (e.command) bits.push(`${e.command} → ${tOr('out.' + e.outcome, e.outcome || '')}`);
  if (kind === 'dropped') bits.push(num(e.count));
  return h('li', {class: 'ev ev-' + kind},
    h('time', {datetime: e.at || ''}, dateTime(e.at || new Date())), ' ',
    h('span', {class: 'ev-kind'}, tOr('ev.' + kind, kind)), ' ',
    e.charge_point_id ? h('a', {href: routeHref('charger', e.charge_point_id)}, e.charge_point_id) : null, ' ',
    h('span', null, bits.join(' · ')));
}

export function render({main, live}) {
  const stamp = h('p', {class: 'muted', role: 'status'});
  const box = h('div', {id: 'overview-counters', 'aria-live': 'polite'});
  const feed = h('ol', {class: 'events', reversed: true}, h('li', {class: 'muted'}, t('ov.events.empty')));
  main.append(header(t('ov.title'), stamp), box, h('p', {class: 'muted small'}, t('ov.note')),
    h('section', {class: 'card'}, h('h2', null, t('ov.events')), feed));

  let inflight = false, again = false, timer = null, stopped = false, loadedOnce = false;
  async function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      const o = await api('/dashboard/overview');
      if (stopped) return;
      box.replaceChildren(counters(o));
      box.dataset.updated = o.as_of;
      stamp.textContent = `${t('ov.updated')} ${dateTime(o.as_of)}`;
      loadedOnce = true;
    } catch (err) {
      if (!stopped && !loadedOnce) box.replaceChildren(errorBox(err, refresh));
    } finally {
      inflight = false;
      if (again && !stopped) { again = false; schedule(); }
    }
  }
  function schedule() {
    if (timer) return;
    timer = setTimeout(() => { timer = null; refresh(); }, 250);
  }
  const off = live.on((kind, e) => {
    if (REFRESH_KINDS.has(kind)) schedule();
    if (kind === 'open') return;
    if (feed.firstChild && feed.firstChild.classList.contains('muted')) feed.replaceChildren();
    feed.prepend(eventLine(kind, e));
    while (feed.children.length > 30) feed.lastChild.remove();
  });
  const poll = setInterval(refresh, 60000); // also catches what no event reports (e.g. the day turning)
  refresh();
  return () => { stopped = true; off(); clearInterval(poll); clearTimeout(timer); };
}
