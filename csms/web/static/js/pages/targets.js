// Targets (目标跟踪), the bureau's page: the plan's targets per county and year from the
// targets, coverage and distance reports of the API, as of a chosen date.
import {api, download} from '../api.js';
import {h} from '../dom.js';
import {date, num, pct, t, tOr, todayLocal} from '../i18n.js';
import {barChart, progress} from '../charts.js';
import {errorBox, loading, section, targetChip} from './common.js';

const COVERAGE_KINDS = ['township', 'village', 'community', 'scenic_spot', 'taihang_station', 'taihang_rv_camp',
  'taihang_parking', 'highway_service_area', 'road_service_area', 'road_parking_area', 'residential_community'];
const BINS = [[0, 0.5], [0.5, 1], [1, 2], [2, 5], [5, 10], [10, Infinity]];
const ATTENTION = new Set(['not_met', 'at_risk']);

const cache = new Map(); // as_of → {targets, coverage, distance} promises (per page load)
function reports(asOf) {
  if (!cache.has(asOf)) {
    const get = (name) => api('/reports/' + name, {query: {as_of: asOf}}).catch((e) => { cache.delete(asOf); throw e; });
    cache.set(asOf, {targets: get('targets'), coverage: get('coverage'), distance: get('distance')});
  }
  return cache.get(asOf);
}

const metricOf = (row, metric) => (row.targets || []).find((x) => x.metric === metric);
const fmtVpp = (v) => num(v, 2);

function comparator(c) { return {'>=': '≥', '<=': '≤', '<': '<', '>': '>', '==': '='}[c] || c || ''; }
function fmtValue(v, unit) {
  if (v === null || v === undefined) return '—';
  if (unit === 'ratio') return pct(v, 1);
  if (unit === 'km') return `${num(v, 1)} ${t('unit.km')}`;
  return Number.isInteger(v) ? num(v) : num(v, 2);
}

function statusSummary(targetsReport, year) {
  const rows = targetsReport.targets.filter((x) => x.year === year);
  const counts = {};
  rows.forEach((x) => { counts[x.status] = (counts[x.status] || 0) + 1; });
  const chips = h('ul', {class: 'status-counts'}, Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([st, n]) =>
    h('li', {dataset: {status: st}}, targetChip(st), ' ', h('strong', null, num(n)))));
  return [h('p', null, t('tg.all_targets') + ' ', t('tg.n_targets', {n: num(rows.length)})), chips];
}

const SHOWN = 10;
function attention(targetsReport, year) {
  const rank = {at_risk: 0, not_met: 1};
  const rows = targetsReport.targets.filter((x) => x.year === year && ATTENTION.has(x.status))
    .sort((a, b) => rank[a.status] - rank[b.status]);
  if (!rows.length) return [h('p', {class: 'muted'}, t('tg.risk.none'))];
  const lang = document.documentElement.lang;
  const body = h('tbody', null, rows.map((x, i) => h('tr', {class: 'st-row ' + x.status, hidden: i >= SHOWN, dataset: {target: x.target_id}},
    h('td', null, x.county_name || x.county),
    h('td', null, lang === 'en' ? x.label_en || x.label_zh : x.label_zh),
    h('td', {class: 'num'}, fmtValue(x.value, x.unit), x.projection != null ? h('span', {class: 'muted small'}, ` → ${fmtValue(x.projection, x.unit)}`) : null),
    h('td', {class: 'num'}, `${comparator(x.comparator)} ${fmtValue(x.threshold, x.unit)}`),
    h('td', null, targetChip(x.status)))));
  const more = rows.length > SHOWN ? h('button', {type: 'button', class: 'btn small more', 'aria-expanded': 'false', onclick: (e) => {
    const open = e.target.getAttribute('aria-expanded') !== 'true';
    [...body.children].forEach((tr, i) => { tr.hidden = !open && i >= SHOWN; });
    e.target.setAttribute('aria-expanded', String(open));
    e.target.textContent = open ? t('tg.fewer') : t('tg.more', {n: num(rows.length)});
  }}, t('tg.more', {n: num(rows.length)})) : null;
  return [h('div', {class: 'table-wrap'}, h('table', {class: 'data attention', id: 'attention'},
    h('caption', null, t('tg.risk')),
    h('thead', null, h('tr', null, [t('tg.county'), t('tg.metric'), t('tg.value'), t('tg.threshold'), t('tg.status')]
      .map((x, i) => h('th', {scope: 'col', class: i === 2 || i === 3 ? 'num' : null}, x)))), body)), more];
}

function newPiles(rows, cityCode) {
  const units = rows.filter((r) => r.county !== cityCode);
  const chart = barChart({
    label: t('tg.new'), categories: units.map((r) => r.county_name),
    series: [
      {name: t('tg.planned'), values: units.map((r) => r.planned_new_public_piles), color: '#9db4cc'},
      {name: t('tg.actual'), values: units.map((r) => r.new_public_piles), color: '#1f4e79',
        classOf: (i) => 'st-' + (metricOf(units[i], 'new_public_piles')?.status || '')},
    ], format: (v) => num(v)});
  const body = rows.map((r) => {
    const st = metricOf(r, 'new_public_piles')?.status;
    const rate = r.planned_new_public_piles ? r.new_public_piles / r.planned_new_public_piles : null;
    return h('tr', {class: 'st-row ' + (st || '') + (r.county === cityCode ? ' total' : ''), dataset: {county: r.county, year: r.year}},
      h('th', {scope: 'row'}, r.county_name),
      h('td', {class: 'num', dataset: {field: 'planned_new_public_piles', value: r.planned_new_public_piles}}, num(r.planned_new_public_piles)),
      h('td', {class: 'num', dataset: {field: 'new_public_piles', value: r.new_public_piles}}, num(r.new_public_piles)),
      h('td', {class: 'num'}, pct(rate, 0)),
      h('td', null, st ? targetChip(st) : '—'));
  });
  return [chart, h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'new-piles'},
    h('caption', null, t('tg.new')),
    h('thead', null, h('tr', null, [t('tg.county'), t('tg.planned'), t('tg.actual'), t('tg.rate'), t('tg.status')]
      .map((x, i) => h('th', {scope: 'col', class: i && i < 4 ? 'num' : null}, x)))),
    h('tbody', null, body)))];
}

function vehiclesPerPile(rows, cityCode) {
  const chart = barChart({
    label: t('tg.vpp'), categories: rows.map((r) => r.county_name),
    series: [{name: t('tg.vpp.short'), values: rows.map((r) => r.vehicles_per_public_pile), color: '#2e86c1',
      classOf: (i) => 'st-' + (metricOf(rows[i], 'vehicles_per_public_pile')?.status || '')}],
    target: rows.map((r) => (r.target_vehicles_per_pile ? {value: r.target_vehicles_per_pile, label: t('tg.target')} : null)),
    format: (v) => num(v, 1), valueFormat: fmtVpp});
  const body = rows.map((r) => {
    const st = metricOf(r, 'vehicles_per_public_pile')?.status;
    return h('tr', {class: 'st-row ' + (st || '') + (r.county === cityCode ? ' total' : ''), dataset: {county: r.county, year: r.year}},
      h('th', {scope: 'row'}, r.county_name),
      h('td', {class: 'num', dataset: {field: 'ev_count', value: r.ev_count}}, num(r.ev_count)),
      h('td', {class: 'num', dataset: {field: 'public_piles', value: r.public_piles}}, num(r.public_piles)),
      h('td', {class: 'num', dataset: {field: 'vehicles_per_public_pile', value: r.vehicles_per_public_pile}}, fmtVpp(r.vehicles_per_public_pile)),
      h('td', {class: 'num', dataset: {field: 'target_vehicles_per_pile', value: r.target_vehicles_per_pile}},
        r.target_vehicles_per_pile ? `≤ ${num(r.target_vehicles_per_pile, 1)}` : '—'),
      h('td', null, st ? targetChip(st) : '—'));
  });
  return [chart, h('p', {class: 'muted small'}, t('tg.lower_better')), h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'vpp'},
    h('caption', null, t('tg.vpp')),
    h('thead', null, h('tr', null, [t('tg.county'), t('tg.ev'), t('tg.public'), t('tg.vpp.short'), t('tg.target'), t('tg.status')]
      .map((x, i) => h('th', {scope: 'col', class: i && i < 5 ? 'num' : null}, x)))),
    h('tbody', null, body)))];
}

function coverage(report, county) {
  const rows = report.summary.filter((r) => r.county === county);
  const byKind = new Map(rows.map((r) => [r.kind, r]));
  return h('div', {class: 'progress-list', id: 'coverage'}, COVERAGE_KINDS.filter((k) => byKind.has(k)).map((k) => {
    const r = byKind.get(k);
    return progress({label: tOr('place.' + k, k), share: r.share,
      text: `${num(r.covered)} / ${num(r.places)} · ${pct(r.share, 1)}`, status: r.share >= 1 ? 'full' : r.share < 0.6 ? 'low' : ''});
  }));
}

function distance(distReport, covReport, county) {
  const rows = distReport.rows.filter((r) => r.county === county);
  const table = h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'distance'},
    h('caption', null, t('tg.distance')),
    h('thead', null, h('tr', null, [t('tg.kind'), t('tg.places'), t('tg.max'), t('tg.p95')].map((x, i) =>
      h('th', {scope: 'col', class: i >= 1 ? 'num' : null}, x)))),
    h('tbody', null, rows.map((r) => h('tr', {dataset: {place: r.place}},
      h('th', {scope: 'row'}, tOr('place.' + r.place, r.place)), h('td', {class: 'num'}, num(r.places)),
      h('td', {class: 'num', dataset: {value: r.max_km}}, num(r.max_km, 2)), h('td', {class: 'num'}, num(r.p95_km, 2)))))));
  const villages = rows.find((r) => r.place === 'village');
  const worst = villages && villages.worst.length ? h('ol', {class: 'worst', id: 'worst-places'}, villages.worst.map((w) =>
    h('li', null, h('span', null, w.name || w.code), ' ', h('strong', null, `${num(w.km, 2)} ${t('unit.km')}`)))) : h('p', {class: 'muted'}, t('none'));
  const km = covReport.places.filter((p) => p.kind === 'village' && (county === covReport.plan?.city_code || p.county === county)
    && Number.isFinite(p.distance_km)).map((p) => p.distance_km);
  const counts = BINS.map(([lo, hi]) => km.filter((v) => v >= lo && v < hi).length);
  const labels = BINS.map(([lo, hi]) => (hi === Infinity ? `≥${num(lo)}` : `${num(lo, lo % 1 ? 1 : 0)}–${num(hi, hi % 1 ? 1 : 0)}`));
  const hist = barChart({label: t('tg.dist.hist'), categories: labels, series: [{name: t('tg.dist.count'), values: counts, color: '#16a085'}],
    format: (v) => num(v), height: 240});
  return [table, h('div', {class: 'grid2'}, h('div', null, h('h3', null, t('tg.worst') + ` (${t('place.village')})`), worst),
    h('div', null, h('h3', null, `${t('tg.dist.hist')} (${t('tg.dist.km')})`), hist))];
}

function downloads(asOf) {
  const status = h('p', {class: 'muted', role: 'status', id: 'download-status'});
  const month = asOf.slice(0, 7);
  const prev = (() => { const [y, m] = month.split('-').map(Number); return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`; })();
  const btn = (label, path, query, id) => h('button', {type: 'button', class: 'btn small', id, onclick: async (e) => {
    e.target.disabled = true;
    status.textContent = t('loading');
    try { status.textContent = '✓ ' + await download(path, query); } catch (err) { status.textContent = err.message; }
    e.target.disabled = false;
  }}, label);
  const row = (name, label, formats, query) => h('tr', null, h('th', {scope: 'row'}, label),
    h('td', null, formats.map((f) => btn(f.toUpperCase(), '/reports/' + name, {...query, format: f}, `dl-${name}-${f}`))));
  return [h('table', {class: 'data downloads'}, h('tbody', null,
    row('targets', t('tg.dl.targets'), ['xlsx', 'csv', 'json'], {as_of: asOf}),
    row('coverage', t('tg.dl.coverage'), ['xlsx', 'csv'], {as_of: asOf}),
    row('distance', t('tg.dl.distance'), ['xlsx', 'csv'], {as_of: asOf}),
    row('operations', t('tg.dl.operations'), ['xlsx', 'csv'], {month}),
    h('tr', null, h('th', {scope: 'row'}, t('tg.dl.monthly')), h('td', null, btn('XLSX', '/reports/monthly', {month: prev}, 'dl-monthly-xlsx'))))),
  status];
}

export function render({main, query, go}) {
  const asOf = /^\d{4}-\d{2}-\d{2}$/.test(query.get('as_of') || '') ? query.get('as_of') : todayLocal();
  const dateInput = h('input', {type: 'date', id: 'as-of', name: 'as_of', value: asOf, max: '2100-12-31', required: true});
  const planLine = h('p', {class: 'muted', id: 'plan-line'});
  const form = h('form', {class: 'inline', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams(query);
    q.set('as_of', dateInput.value);
    go('#/targets?' + q);
  }}, h('label', {for: 'as-of'}, t('tg.as_of')), dateInput, h('button', {type: 'submit', class: 'btn primary'}, t('tg.apply')));
  const yearBox = h('div', {class: 'segmented', role: 'group', 'aria-label': t('tg.year')});
  const countySel = h('select', {id: 'county'});
  const notes = h('div', {class: 'notes'});
  const summary = h('div', null, loading()), piles = h('div', null, loading()), vpp = h('div', null, loading());
  const risky = h('div', null, loading());
  const cov = h('div', null, loading()), dist = h('div', null, loading());
  main.append(h('div', {class: 'page-head'}, h('h1', null, t('tg.title')), form), planLine, notes,
    h('div', {class: 'toolbar'}, h('span', {class: 'label'}, t('tg.year')), yearBox,
      h('label', {for: 'county'}, t('tg.county')), countySel),
    section(t('tg.summary'), summary),
    h('div', {class: 'grid2'}, section(t('tg.new'), piles), section(t('tg.vpp'), vpp)),
    section(t('tg.risk'), risky),
    h('div', {class: 'grid2'}, section(t('tg.coverage'), cov), section(t('tg.distance'), dist)),
    section(t('tg.downloads'), ...downloads(asOf)));

  let alive = true;
  const r = reports(asOf);
  r.targets.then((rep) => {
    if (!alive) return;
    const city = rep.plan.city_code;
    planLine.textContent = `${t('tg.plan')}：${rep.plan.title}（${rep.plan.document}） · ${t('tg.as_of')} ${date(rep.as_of)}`;
    notes.replaceChildren(...rep.notes.filter((n) => n.severity !== 'info').map((n) =>
      h('p', {class: 'note ' + n.severity}, document.documentElement.lang === 'en' ? n.message_en : n.message_zh)));
    const years = [...new Set(rep.counties.map((c) => c.year))].sort();
    const wanted = Number(query.get('year'));
    const asYear = Number(asOf.slice(0, 4));
    const year = years.includes(wanted) ? wanted : years.includes(asYear) ? asYear : (asYear > years[years.length - 1] ? years[years.length - 1] : years[0]);
    yearBox.replaceChildren(...years.map((y) => h('button', {type: 'button', class: 'btn small', 'aria-pressed': String(y === year),
      dataset: {year: y}, onclick: () => { const q = new URLSearchParams(query); q.set('year', y); q.set('as_of', asOf); go('#/targets?' + q); }}, String(y))));
    const units = [city, ...new Set(rep.counties.map((c) => c.county).filter((c) => c !== city))];
    const names = new Map(rep.counties.map((c) => [c.county, c.county_name]));
    const county = units.includes(query.get('county')) ? query.get('county') : city;
    countySel.replaceChildren(...units.map((c) => h('option', {value: c, selected: c === county}, names.get(c) || c)));
    countySel.onchange = () => { const q = new URLSearchParams(query); q.set('county', countySel.value); q.set('as_of', asOf); go('#/targets?' + q); };
    const rows = rep.counties.filter((c) => c.year === year);
    const ordered = [...rows.filter((c) => c.county !== city), ...rows.filter((c) => c.county === city)];
    summary.replaceChildren(...statusSummary(rep, year));
    risky.replaceChildren(...attention(rep, year));
    piles.replaceChildren(...newPiles(ordered, city));
    vpp.replaceChildren(...vehiclesPerPile(ordered, city));
    Promise.all([r.coverage, r.distance]).then(([c, d]) => {
      if (!alive) return;
      cov.replaceChildren(coverage(c, county));
      dist.replaceChildren(...distance(d, c, county));
    }).catch((err) => { if (alive) { cov.replaceChildren(errorBox(err)); dist.replaceChildren(errorBox(err)); } });
  }).catch((err) => {
    if (!alive) return;
    for (const box of [summary, piles, vpp, risky, cov, dist]) box.replaceChildren(errorBox(err, () => go('#/targets?' + query)));
  });
  return () => { alive = false; };
}
