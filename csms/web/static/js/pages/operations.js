// Operations: utilisation, availability and faults per county and month (charts and a table).
import {api} from '../api.js';
import {h} from '../dom.js';
import {month, num, pct, t} from '../i18n.js';
import {barChart, lineChart, PALETTE} from '../charts.js';
import {errorBox, loading, section} from './common.js';

const tickPct = (v) => pct(v, Math.abs(v * 100 - Math.round(v * 100)) > 1e-9 ? 1 : 0);

export function render({main, query, go}) {
  const months = [3, 6, 12].includes(Number(query.get('months'))) ? Number(query.get('months')) : 6;
  const end = /^\d{4}-\d{2}$/.test(query.get('end') || '') ? query.get('end') : '';
  const monthsSel = h('select', {id: 'op-months', name: 'months'}, [3, 6, 12].map((n) => h('option', {value: n, selected: n === months}, String(n))));
  const endInput = h('input', {type: 'month', id: 'op-end', name: 'end', value: end});
  const form = h('form', {class: 'inline', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    q.set('months', monthsSel.value);
    if (endInput.value) q.set('end', endInput.value);
    go('#/operations?' + q);
  }}, h('label', {for: 'op-months'}, t('op.months')), monthsSel, h('label', {for: 'op-end'}, t('op.end')), endInput,
  h('button', {type: 'submit', class: 'btn primary'}, t('tg.apply')));
  const box = h('div', null, loading());
  main.append(h('div', {class: 'page-head'}, h('h1', null, t('op.title')), form), h('p', {class: 'muted small'}, t('op.def')), box);
  let alive = true;
  const load = () => api('/dashboard/operations', {query: {months, end}}).then((d) => {
    if (!alive) return;
    const city = d.counties.find((c) => /00$/.test(c.code))?.code;
    const units = d.counties.map((c) => c.code);
    const names = new Map(d.counties.map((c) => [c.code, c.name]));
    const at = new Map(d.rows.map((r) => [`${r.county}|${r.month}`, r]));
    const cats = d.months.map(month);
    const series = (field, only) => units.filter((u) => !only || only(u)).map((u, i) => ({
      name: names.get(u), bold: u === city, color: u === city ? '#111' : PALETTE[(i + 1) % PALETTE.length],
      values: d.months.map((m) => { const r = at.get(`${u}|${m}`); return r ? r[field] : null; })}));
    const util = lineChart({label: t('op.util'), categories: cats, series: series('utilisation'), format: tickPct, percent: true});
    const avail = lineChart({label: t('op.avail'), categories: cats, series: series('availability'), format: tickPct, max: 1, fitMin: true, percent: true});
    const faults = barChart({label: t('op.faults'), categories: cats, series: series('faults', (u) => u !== city), format: (v) => num(v), integer: true, width: 1100, height: 320});
    const rows = [...d.rows].sort((a, b) => (a.month < b.month ? 1 : a.month > b.month ? -1 : units.indexOf(a.county) - units.indexOf(b.county)));
    const table = h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'ops-table'},
      h('caption', null, t('op.table')),
      h('thead', null, h('tr', null, [t('op.month'), t('tg.county'), t('op.in_service'), t('op.reporting'), t('op.sessions'), t('op.energy'),
        t('op.util'), t('op.avail'), t('op.faults'), t('op.mttr')].map((x, i) => h('th', {scope: 'col', class: i > 1 ? 'num' : null}, x)))),
      h('tbody', null, rows.map((r) => h('tr', {class: r.county === city ? 'total' : null, dataset: {county: r.county, month: r.month}},
        h('td', null, month(r.month)), h('th', {scope: 'row'}, r.county_name),
        h('td', {class: 'num'}, num(r.piles_in_service)), h('td', {class: 'num'}, num(r.piles_reporting)),
        h('td', {class: 'num'}, num(r.sessions)), h('td', {class: 'num'}, num(r.energy_kwh, 0)),
        h('td', {class: 'num'}, pct(r.utilisation, 1)), h('td', {class: 'num'}, pct(r.availability, 1)),
        h('td', {class: 'num'}, num(r.faults)), h('td', {class: 'num'}, num(r.mttr_hours, 1)))))));
    box.replaceChildren(
      h('div', {class: 'grid2'}, section(t('op.util'), util), section(t('op.avail'), avail)),
      section(`${t('op.faults')}`, faults), section(t('op.table'), table));
  }).catch((err) => { if (alive) box.replaceChildren(errorBox(err, load)); });
  load();
  return () => { alive = false; };
}
