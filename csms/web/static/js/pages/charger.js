// A charger: identity, connectors (live), connection history, sessions, faults, commands.
import {api, ApiError} from '../api.js';
import {h, routeHref, table} from '../dom.js';
import {dateTime, num, t, tOr} from '../i18n.js';
import {errorBox, fill, header, onlineChip, section, statusChip} from './common.js';

const TRIGGERS = ['StatusNotification', 'BootNotification', 'Heartbeat', 'MeterValues'];
// The API's commands offered here, with their fields: [name, kind, options/default]
const COMMANDS = {
  'reset': [['type', 'select', ['soft', 'hard']]],
  'trigger-message': [['requested_message', 'select', TRIGGERS], ['connector_id', 'int?']],
  'change-availability': [['type', 'select', ['Operative', 'Inoperative']], ['connector_id', 'int', 0]],
  'unlock-connector': [['connector_id', 'int', 1]],
  'remote-start': [['id_tag', 'text'], ['connector_id', 'int?']],
  'remote-stop': [['transaction_id', 'text']],
  'get-configuration': [['keys', 'list']],
  'clear-cache': [],
  'get-local-list-version': [],
};
const FIELD_LABEL = {type: 'f.type', requested_message: 'f.requested_message', connector_id: 'f.connector_id',
  id_tag: 'f.id_tag', transaction_id: 'f.transaction_id', keys: 'f.keys'};
const OPTION_LABEL = {soft: 'f.soft', hard: 'f.hard', Operative: 'f.Operative', Inoperative: 'f.Inoperative'};

function identity(c) {
  const pairs = [
    ['ch.id', c.id], ['ch.station', c.station_id ? h('a', {href: '#/map?station=' + encodeURIComponent(c.station_id)}, c.station_id) : '—'],
    ['ch.state', h('span', {id: 'charger-online'}, onlineChip(c.online))], ['ch.version', c.ocpp_version || '—'],
    ['ch.profile', t('ch.profile.' + c.security_profile)], ['ch.registration', c.registration_status],
    ['ch.vendor', c.vendor || '—'], ['ch.model', c.model || '—'],
    ['ch.serial', c.charge_box_serial_number || c.serial_number || '—'], ['ch.firmware', c.firmware_version || '—'],
    ['ch.node', c.node_id || '—'], ['ch.since', dateTime(c.connected_since)], ['ch.last_seen', dateTime(c.last_seen)],
    ['ch.boot', c.boot_at ? `${dateTime(c.boot_at)} ${c.boot_reason ? '(' + c.boot_reason + ')' : ''}` : '—'],
  ];
  return h('dl', {class: 'pairs wide'}, pairs.flatMap(([k, v]) => [h('dt', null, t(k)), h('dd', null, v)]));
}

function connectorRows(c) {
  return (c.connectors || []).map((x) => Object.assign([x.evse_id != null ? `${x.evse_id}/${x.connector_id}` : String(x.connector_id),
    statusChip(x.status), x.error_code || '', x.info || x.vendor_error_code || '', dateTime(x.status_at)],
  {attrs: {dataset: {connector: x.connector_id}}}));
}

function connectorsTable(c) {
  return table({headers: [t('ch.connector'), t('ch.status'), t('ch.error'), t('fl.info'), t('ch.status_at')],
    rows: connectorRows(c), className: 'data connectors'});
}

function commandForm(cpId, onDone) {
  const select = h('select', {id: 'cmd-name', name: 'command'}, Object.keys(COMMANDS).map((name) =>
    h('option', {value: name}, `${t('cmd.' + name)} (${name})`)));
  const fields = h('div', {class: 'cmd-fields'});
  const result = h('div', {class: 'cmd-result', id: 'cmd-result', 'aria-live': 'polite'});
  const button = h('button', {type: 'submit', class: 'btn primary', id: 'cmd-send'}, t('ch.send'));
  const drawFields = () => {
    fields.replaceChildren(...COMMANDS[select.value].map(([name, kind, opt]) => {
      const id = 'cmd-f-' + name;
      let input;
      if (kind === 'select') {
        input = h('select', {id, name}, opt.map((o) => h('option', {value: o}, OPTION_LABEL[o] ? t(OPTION_LABEL[o]) : o)));
      } else if (kind.startsWith('int')) {
        input = h('input', {id, name, type: 'number', min: 0, step: 1, inputmode: 'numeric', value: opt ?? '',
          required: !kind.endsWith('?')});
      } else {
        input = h('input', {id, name, type: 'text', required: kind === 'text', autocomplete: 'off'});
      }
      return h('div', {class: 'field'}, h('label', {for: id}, t(FIELD_LABEL[name])), input);
    }));
  };
  select.addEventListener('change', drawFields);
  drawFields();
  const form = h('form', {class: 'cmd-form', onsubmit: async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const name = select.value;
    const body = {};
    for (const [field, kind] of COMMANDS[name]) {
      const v = form.elements[field].value.trim();
      if (v === '') continue;
      if (kind.startsWith('int')) body[field] = Number(v);
      else if (kind === 'list') body[field] = v.split(',').map((x) => x.trim()).filter(Boolean);
      else body[field] = v;
    }
    button.disabled = true;
    result.replaceChildren(h('p', {class: 'muted'}, t('ch.sending')));
    try {
      const r = await api(`/chargers/${encodeURIComponent(cpId)}/commands/${name}`, {method: 'POST', body});
      const status = r.response && typeof r.response.status === 'string' ? r.response.status : null;
      result.replaceChildren(h('p', {class: 'ok'}, h('strong', null, t('ch.answer') + ': '),
        h('span', {class: 'answer', dataset: {outcome: r.outcome}}, status || tOr('out.' + r.outcome, r.outcome)),
        ` · ${r.action} · ${num(r.duration_ms, 0)} ms`),
      h('pre', {class: 'json'}, JSON.stringify(r.response, null, 2)));
    } catch (err) {
      const detail = err instanceof ApiError && err.details && err.details[0];
      const outcome = detail && detail.outcome;
      result.replaceChildren(h('p', {class: 'error', role: 'alert'},
        h('span', {class: 'answer', dataset: {outcome: outcome || 'error'}}, outcome ? tOr('out.' + outcome, outcome) : t('error')),
        ': ', err.message),
      detail && detail.response ? h('pre', {class: 'json'}, JSON.stringify(detail.response, null, 2)) : null);
    } finally {
      button.disabled = false;
      onDone();
    }
  }}, h('div', {class: 'field'}, h('label', {for: 'cmd-name'}, t('ch.command')), select), fields, button);
  return h('div', null, form, result);
}

export function render({main, params, live}) {
  const cpId = params[0] || '';
  const enc = encodeURIComponent(cpId);
  const title = h('h1', null, `${t('ch.title')} `, h('span', {class: 'mono'}, cpId));
  main.append(h('div', {class: 'page-head'}, title));
  const ident = h('div'), conns = h('div'), history = h('div'), sessions = h('div'), faults = h('div'), cmdLog = h('div');
  let charger = null;
  const grid = h('div', {class: 'grid2'},
    section(t('ch.identity'), ident), section(t('ch.connectors'), conns));
  main.append(grid);
  const loadCharger = () => fill(ident, async () => {
    charger = await api('/chargers/' + enc);
    conns.replaceChildren(connectorsTable(charger));
    return identity(charger);
  });
  const loadHistory = () => fill(history, async () => {
    const r = await api(`/chargers/${enc}/connections`, {query: {limit: 10}});
    return table({headers: [t('ch.connected_at'), t('ch.disconnected_at'), t('ch.node'), t('ch.version'), t('ch.remote'), t('ch.close_code')],
      rows: r.items.map((x) => [dateTime(x.connected_at), x.disconnected_at ? dateTime(x.disconnected_at) : t('online'),
        x.node_id, x.ocpp_version, x.remote_address || '—', x.close_code ?? '—']), empty: t('none')});
  });
  const loadSessions = () => fill(sessions, async () => {
    const r = await api('/sessions', {query: {charger: cpId, limit: 10}});
    return [table({headers: [t('ss.id'), t('ss.connector'), t('ss.tag'), t('ss.started'), t('ss.stopped'), t('ss.energy'), t('ss.status')],
      numeric: [5], rows: r.items.map((x) => [String(x.id), x.connector_id ?? '—', x.id_tag || '—', dateTime(x.started_at),
        dateTime(x.stopped_at), x.energy_wh == null ? '—' : num(x.energy_wh / 1000, 2), t(x.status === 'open' ? 'ss.open' : 'ss.closed')]),
      empty: t('none')}), h('p', null, h('a', {href: '#/sessions?charger=' + enc}, `${t('nav.sessions')} (${num(r.total)}) →`))];
  });
  const loadFaults = () => fill(faults, async () => {
    const r = await api('/faults', {query: {charger: cpId, limit: 10}});
    return [table({headers: [t('ch.connector'), t('fl.code'), t('fl.info'), t('fl.opened'), t('fl.closed')],
      rows: r.items.map((x) => [String(x.connector_id), x.error_code, x.info || x.vendor_error_code || '—', dateTime(x.opened_at),
        x.closed_at ? dateTime(x.closed_at) : h('span', {class: 'chip conn-Faulted'}, t('fl.open'))]), empty: t('none')}),
    h('p', null, h('a', {href: '#/faults?charger=' + enc}, `${t('nav.faults')} (${num(r.total)}) →`))];
  });
  const loadCommands = () => fill(cmdLog, async () => {
    const r = await api('/commands', {query: {charger: cpId, limit: 10}});
    return table({headers: [t('ch.at'), t('ch.command'), t('ch.outcome'), t('ch.answer'), t('ch.by'), t('ch.duration')], numeric: [5],
      rows: r.items.map((x) => [dateTime(x.requested_at), x.command, tOr('out.' + x.outcome, x.outcome),
        x.response && typeof x.response.status === 'string' ? x.response.status : (x.error || '—'), x.token_name || '—',
        x.duration_ms == null ? '—' : num(x.duration_ms, 0)]), empty: t('none')});
  });
  main.append(section(t('ch.commands'), commandForm(cpId, loadCommands), h('h3', null, t('ch.history')), cmdLog),
    h('div', {class: 'grid2'}, section(t('ch.sessions'), sessions), section(t('ch.faults'), faults)),
    section(t('ch.connections'), history));
  loadCharger(); loadHistory(); loadSessions(); loadFaults(); loadCommands();

  const off = live.on((kind, e) => {
    if (kind === 'open' || kind === 'dropped') { loadCharger(); return; }
    if (e.charge_point_id !== cpId) return;
    if (kind === 'status' && charger) {
      const list = charger.connectors || (charger.connectors = []);
      let c = list.find((x) => x.connector_id === e.connector_id);
      if (!c) { c = {connector_id: e.connector_id}; list.push(c); list.sort((a, b) => a.connector_id - b.connector_id); }
      Object.assign(c, {status: e.status, error_code: e.error_code, status_at: e.at});
      conns.replaceChildren(connectorsTable(charger));
    } else if (kind === 'charger_connected' || kind === 'charger_disconnected') {
      loadCharger(); loadHistory();
    } else if (kind.startsWith('session')) {
      loadSessions();
    } else if (kind.startsWith('fault')) {
      loadFaults();
    }
  });
  return () => off();
}
