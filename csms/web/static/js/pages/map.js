// Map: the county outlines (GeoJSON drawn as SVG, equirectangular projection) and the stations
// coloured by status; choosing a station shows its piles and connectors.
import {api} from '../api.js';
import {clear, h, routeHref, s} from '../dom.js';
import {num, t, tOr} from '../i18n.js';
import {errorBox, header, loading, onlineChip, statusChip} from './common.js';

const STATUSES = ['faulted', 'charging', 'available', 'unavailable', 'offline', 'none'];
const W = 1000;
let geoCache = null;

async function counties() {
  if (!geoCache) {
    const r = await fetch('/web/yangquan_counties.geojson', {cache: 'no-cache', credentials: 'omit'});
    if (!r.ok) throw new Error('GeoJSON ' + r.status);
    geoCache = await r.json();
  }
  return geoCache;
}

function polygons(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return [geometry.coordinates];
  if (geometry.type === 'MultiPolygon') return geometry.coordinates;
  return [];
}

function projection(geo) {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const f of geo.features) for (const poly of polygons(f.geometry)) for (const [x, y] of poly[0]) {
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  const k = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
  const pad = 20;
  const scale = (W - 2 * pad) / ((maxX - minX) * k);
  const height = Math.round((maxY - minY) * scale + 2 * pad);
  return {height, scale, project: ([lon, lat]) => [pad + (lon - minX) * k * scale, pad + (maxY - lat) * scale]};
}

function ringArea(ring) {
  let a = 0, cx = 0, cy = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const f = ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
    a += f; cx += (ring[j][0] + ring[i][0]) * f; cy += (ring[j][1] + ring[i][1]) * f;
  }
  return a ? {area: Math.abs(a / 2), c: [cx / (3 * a), cy / (3 * a)]} : {area: 0, c: ring[0]};
}

function stationPanel(panel, st, close) {
  panel.hidden = false;
  panel.replaceChildren(loading());
  api('/dashboard/stations/' + encodeURIComponent(st.station_id)).then((d) => {
    const byCp = new Map(d.chargers.map((c) => [c.id, c]));
    const inPiles = new Set(d.piles.map((p) => p.charge_point_id).filter(Boolean));
    const connectorCell = (cp) => {
      if (!cp) return '—';
      const conns = (cp.connectors || []).filter((c) => c.connector_id > 0);
      return h('span', {class: 'chips'}, onlineChip(cp.online), ' ',
        conns.map((c) => [h('span', {class: 'muted'}, `#${c.connector_id}`), statusChip(c.status), ' ']));
    };
    const chargerCell = (id, cp) => (id ? [h('a', {href: routeHref('charger', id)}, id), h('br'), connectorCell(cp)] : '—');
    const rows = d.piles.map((p) => {
      const cp = p.charge_point_id ? byCp.get(p.charge_point_id) : null;
      return h('tr', {dataset: {pile: p.pile_id}},
        h('th', {scope: 'row'}, p.pile_id),
        h('td', null, `${num(p.power_kw)} kW ${tOr('current.' + p.current_type, p.current_type)}`),
        h('td', null, chargerCell(p.charge_point_id, cp)));
    });
    for (const cp of d.chargers) {
      if (inPiles.has(cp.id)) continue;
      rows.push(h('tr', null, h('th', {scope: 'row'}, '—'), h('td', null, '—'), h('td', null, chargerCell(cp.id, cp))));
    }
    panel.replaceChildren(
      h('div', {class: 'panel-head'}, h('h2', {id: 'station-title'}, d.name || d.station_id),
        h('button', {type: 'button', class: 'btn small', onclick: close}, t('station.close'))),
      h('dl', {class: 'pairs'},
        h('dt', null, t('station.id')), h('dd', null, d.station_id),
        h('dt', null, t('station.county')), h('dd', null, d.county_name || d.county),
        h('dt', null, t('station.access')), h('dd', null, tOr('access.' + d.access, d.access)),
        d.operator ? [h('dt', null, t('station.operator')), h('dd', null, d.operator)] : null,
        d.address ? [h('dt', null, t('station.address')), h('dd', null, d.address)] : null,
        h('dt', null, t('ch.status')), h('dd', null, h('span', {class: 'chip st-' + d.status}, t('st.' + d.status)))),
      h('h3', null, `${t('station.piles')} (${num(d.piles.length)})`),
      h('div', {class: 'table-wrap'}, h('table', {class: 'data compact'},
        h('thead', null, h('tr', null, ['station.pile', 'station.power', 'station.charger'].map((k) =>
          h('th', {scope: 'col'}, t(k))))),
        h('tbody', null, rows))));
    panel.focus();
  }).catch((err) => panel.replaceChildren(errorBox(err)));
}

export function render({main, query}) {
  const box = h('div', {class: 'map-layout'}, loading());
  main.append(header(t('map.title')), box);
  let alive = true;
  Promise.all([counties(), api('/dashboard/map')]).then(([geo, data]) => {
    if (!alive) return;
    const {height, project} = projection(geo);
    const svg = s('svg', {viewBox: `0 0 ${W} ${height}`, class: 'map', role: 'group', 'aria-label': t('map.title')});
    const gCounties = s('g', {class: 'counties'});
    const gLabels = s('g', {class: 'county-labels', 'aria-hidden': 'true'});
    for (const f of geo.features) {
      let best = {area: -1};
      const d = polygons(f.geometry).map((poly) => {
        const a = ringArea(poly[0]);
        if (a.area > best.area) best = a;
        return poly.map((ring) => 'M' + ring.map((p) => project(p).map((v) => v.toFixed(1)).join(' ')).join('L') + 'Z').join('');
      }).join('');
      gCounties.append(s('path', {d, class: 'county', dataset: {code: f.properties?.code}},
        s('title', null, f.properties?.name || '')));
      const [lx, ly] = project(best.c);
      gLabels.append(s('text', {x: lx, y: ly, class: 'county-label', 'text-anchor': 'middle'}, f.properties?.name || ''));
    }
    svg.append(gCounties);
    const gStations = s('g', {class: 'stations'});
    const byId = new Map();
    const panel = h('aside', {class: 'card station-panel', tabindex: '-1', 'aria-labelledby': 'station-title', hidden: true});
    let selected = null;
    const close = () => { panel.hidden = true; if (selected) selected.classList.remove('selected'); selected = null; };
    const choose = (st, el) => {
      if (selected) selected.classList.remove('selected');
      selected = el; el.classList.add('selected');
      stationPanel(panel, st, close);
    };
    // draw registry-only stations first so that connected ones are on top
    const rank = (st) => -STATUSES.indexOf(st.status); // faulted last: drawn on top
    const order = [...data.stations].sort((a, b) => rank(a) - rank(b));
    for (const st of order) {
      const [x, y] = project([st.lon, st.lat]);
      const connected = st.status !== 'none';
      const label = `${st.name || st.station_id} · ${t('st.' + st.status)}`;
      const el = s('circle', {cx: x.toFixed(1), cy: y.toFixed(1), r: connected ? 6 : 3, class: 'station st-' + st.status,
        dataset: {station: st.station_id, status: st.status}, tabindex: connected ? '0' : null,
        role: connected ? 'button' : null, 'aria-label': connected ? label : null},
      s('title', null, label));
      el.addEventListener('click', () => choose(st, el));
      el.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); choose(st, el); } });
      gStations.append(el);
      byId.set(st.station_id, {st, el});
    }
    svg.append(gStations, gLabels); // labels above the dots (they let clicks through)

    // zoom (buttons, keyboard-usable) by changing the viewBox
    let view = [0, 0, W, height];
    const setView = (v) => { view = v; svg.setAttribute('viewBox', v.map((n) => n.toFixed(1)).join(' ')); svg.classList.toggle('zoomed', v[2] < W); };
    const zoom = (f) => {
      const [x, y, w, hh] = view;
      const nw = Math.min(W, Math.max(W / 16, w * f)), nh = nw * height / W;
      const cx = selected ? +selected.getAttribute('cx') : x + w / 2, cy = selected ? +selected.getAttribute('cy') : y + hh / 2;
      setView([Math.max(0, Math.min(W - nw, cx - nw / 2)), Math.max(0, Math.min(height - nh, cy - nh / 2)), nw, nh]);
    };
    const tools = h('div', {class: 'map-tools'},
      h('button', {type: 'button', class: 'btn small', onclick: () => zoom(0.5), 'aria-label': t('map.zoom_in')}, '+'),
      h('button', {type: 'button', class: 'btn small', onclick: () => zoom(2), 'aria-label': t('map.zoom_out')}, '−'),
      h('button', {type: 'button', class: 'btn small', onclick: () => setView([0, 0, W, height])}, t('map.reset')));

    // legend doubles as a filter
    const legend = h('fieldset', {class: 'map-legend'}, h('legend', null, t('map.legend')),
      STATUSES.map((status) => {
        const id = 'lg-' + status;
        const box = h('input', {type: 'checkbox', id, checked: true, onchange: (e) => svg.classList.toggle('hide-' + status, !e.target.checked)});
        return h('div', {class: 'legend-item'}, box, h('label', {for: id}, h('span', {class: 'dot st-' + status, 'aria-hidden': 'true'}),
          `${t('st.' + status)} (${num(data.counts[status] || 0)})`));
      }));

    // find a station by name or id
    const listId = 'station-names';
    const datalist = h('datalist', {id: listId}, data.stations.filter((x) => x.status !== 'none')
      .map((x) => h('option', {value: x.station_id}, x.name || '')));
    const find = h('input', {id: 'find-station', type: 'search', list: listId, placeholder: t('map.find.placeholder')});
    const findForm = h('form', {class: 'inline', role: 'search', onsubmit: (e) => {
      e.preventDefault();
      const q = find.value.trim();
      const hit = byId.get(q) || [...byId.values()].find((v) => (v.st.name || '').includes(q));
      if (hit) choose(hit.st, hit.el);
    }}, h('label', {for: 'find-station'}, t('map.find')), find, datalist,
    h('button', {type: 'submit', class: 'btn small'}, t('map.find')));

    clear(box).append(h('div', {class: 'map-main card'}, h('div', {class: 'map-bar'}, findForm, tools), svg,
      h('p', {class: 'muted small'}, `${num(data.stations.length)} ${t('map.stations')} · ${t('map.noCoords')} ${t('map.pick')}`)),
    h('div', {class: 'map-side'}, legend, panel));
    const want = query.get('station');
    if (want && byId.has(want)) choose(byId.get(want).st, byId.get(want).el);
  }).catch((err) => { if (alive) clear(box).append(errorBox(err)); });
  return () => { alive = false; };
}
