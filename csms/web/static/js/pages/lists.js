// Sessions and faults: filterable tables, paginated by the server, exportable as CSV.
import {api, download} from '../api.js';
import {h, routeHref, table} from '../dom.js';
import {dateTime, localMidnight, num, t} from '../i18n.js';
import {errorBox, header, loading, statusChip} from './common.js';

const SIZES = [25, 50, 100];

function filterForm({fields, query, onApply, onExport}) {
  const inputs = {};
  const controls = fields.map(([name, label, kind, options]) => {
    const id = 'flt-' + name;
    let input;
    if (kind === 'select') {
      input = h('select', {id, name}, options.map(([v, l]) => h('option', {value: v, selected: query.get(name) === v}, l)));
    } else {
      input = h('input', {id, name, type: kind, value: query.get(name) || '', autocomplete: 'off'});
    }
    inputs[name] = input;
    return h('div', {class: 'field'}, h('label', {for: id}, label), input);
  });
  const form = h('form', {class: 'filters card', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [name, input] of Object.entries(inputs)) if (input.value.trim()) q.set(name, input.value.trim());
    const limit = query.get('limit');
    if (limit) q.set('limit', limit);
    onApply(q);
  }}, controls,
  h('div', {class: 'field buttons'},
    h('button', {type: 'submit', class: 'btn primary'}, t('flt.apply')),
    h('button', {type: 'button', class: 'btn', onclick: () => onApply(new URLSearchParams())}, t('flt.reset')),
    h('button', {type: 'button', class: 'btn', id: 'export-csv', onclick: onExport}, t('flt.export'))));
  return form;
}

/** API query parameters from the page's query (dates → Asia/Shanghai midnights). */
function apiQuery(query, keys) {
  const out = {};
  for (const k of keys) {
    const v = query.get(k);
    if (!v) continue;
    if (k === 'since') out.since = localMidnight(v);
    else if (k === 'until') out.until = localMidnight(v, 1);
    else out[k] = v;
  }
  return out;
}

function pager({total, limit, offset, go}) {
  const from = total ? offset + 1 : 0, to = Math.min(total, offset + limit);
  const size = h('select', {id: 'page-size', onchange: (e) => go(0, Number(e.target.value))},
    SIZES.map((n) => h('option', {value: n, selected: n === limit}, String(n))));
  return h('nav', {class: 'pager', 'aria-label': 'pagination'},
    h('button', {type: 'button', class: 'btn small', disabled: offset <= 0, onclick: () => go(Math.max(0, offset - limit), limit)}, t('pg.prev')),
    h('span', {class: 'range', role: 'status'}, total ? t('pg.range', {from: num(from), to: num(to), total: num(total)}) : t('pg.empty')),
    h('button', {type: 'button', class: 'btn small', disabled: to >= total, onclick: () => go(offset + limit, limit)}, t('pg.next')),
    h('label', {for: 'page-size'}, t('pg.size')), size);
}

function listPage({main, query, go, title, path, exportPath, fields, keys, headers, numeric, row, page}) {
  const limit = SIZES.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : 25;
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  const navigate = (q) => go(`#/${page}${q.toString() ? '?' + q : ''}`);
  const status = h('p', {class: 'muted', role: 'status'});
  const box = h('div', {class: 'list'}, loading());
  const onExport = async () => {
    status.textContent = t('loading');
    try { status.textContent = await download(exportPath, apiQuery(query, keys), page + '.csv'); } catch (err) { status.textContent = err.message; }
  };
  main.append(header(title), filterForm({fields, query, onApply: navigate, onExport}), status, box);
  let alive = true;
  const load = async () => {
    try {
      const r = await api(path, {query: {...apiQuery(query, keys), limit, offset}});
      if (!alive) return;
      const goPage = (off, lim) => {
        const q = new URLSearchParams(query);
        if (off) q.set('offset', String(off)); else q.delete('offset');
        if (lim !== 25) q.set('limit', String(lim)); else q.delete('limit');
        navigate(q);
      };
      box.replaceChildren(pager({total: r.total, limit, offset, go: goPage}),
        table({caption: title, headers, numeric, rows: r.items.map((x) => row(x, load)), empty: t('pg.empty')}),
        pager({total: r.total, limit, offset, go: goPage}));
    } catch (err) {
      if (alive) box.replaceChildren(errorBox(err, load));
    }
  };
  load();
  return () => { alive = false; };
}

const chargerLink = (id) => h('a', {href: routeHref('charger', id)}, id);

export function renderSessions(ctx) {
  return listPage({...ctx, page: 'sessions', title: t('ss.title'), path: '/sessions',
    exportPath: '/dashboard/export/sessions.csv', keys: ['charger', 'station', 'id_tag', 'status', 'since', 'until'],
    fields: [['charger', t('flt.charger'), 'text'], ['station', t('flt.station'), 'text'], ['id_tag', t('flt.tag'), 'text'],
      ['status', t('flt.status'), 'select', [['', t('flt.all')], ['open', t('ss.open')], ['closed', t('ss.closed')]]],
      ['since', t('flt.since'), 'date'], ['until', t('flt.until'), 'date']],
    headers: [t('ss.id'), t('ss.charger'), t('ss.connector'), t('ss.tx'), t('ss.tag'), t('ss.started'), t('ss.stopped'),
      t('ss.energy'), t('ss.status'), t('ss.reason')],
    numeric: [0, 2, 7],
    row: (x) => [String(x.id), chargerLink(x.charge_point_id), x.connector_id ?? '—', x.transaction_id, x.id_tag || '—',
      dateTime(x.started_at), dateTime(x.stopped_at), x.energy_wh == null ? '—' : num(x.energy_wh / 1000, 2),
      x.status === 'open' ? statusChip('Charging') : t('ss.closed'), x.stop_reason || '—'],
  });
}

export function renderFaults(ctx) {
  return listPage({...ctx, page: 'faults', title: t('fl.title'), path: '/faults',
    exportPath: '/dashboard/export/faults.csv', keys: ['charger', 'station', 'status', 'error_code', 'since', 'until'],
    fields: [['charger', t('flt.charger'), 'text'], ['station', t('flt.station'), 'text'], ['error_code', t('flt.code'), 'text'],
      ['status', t('flt.status'), 'select', [['', t('flt.all')], ['open', t('fl.open')], ['closed', t('fl.closed_s')]]],
      ['since', t('flt.since'), 'date'], ['until', t('flt.until'), 'date']],
    headers: [t('fl.id'), t('ss.charger'), t('ss.connector'), t('fl.source'), t('fl.code'), t('fl.vendor'), t('fl.info'),
      t('fl.opened'), t('fl.closed'), t('ss.status')],
    numeric: [0, 2],
    row: (x, reload) => [String(x.id), chargerLink(x.charge_point_id), String(x.connector_id), x.source, x.error_code,
      x.vendor_error_code || '—', x.info || '—', dateTime(x.opened_at), dateTime(x.closed_at),
      x.status === 'open'
        ? h('span', {class: 'chips'}, h('span', {class: 'chip conn-Faulted'}, t('fl.open')), ' ',
          h('button', {type: 'button', class: 'btn small', 'aria-label': `${t('fl.close')} #${x.id}`, onclick: async (e) => {
            e.target.disabled = true;
            try { await api(`/faults/${x.id}/close`, {method: 'POST'}); reload(); } catch (err) { e.target.disabled = false; alert(err.message); }
          }}, t('fl.close')))
        : t('fl.closed_s')],
  });
}
