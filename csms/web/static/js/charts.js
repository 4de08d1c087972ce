// Small SVG charts (no library): grouped bars with an optional target line, lines, progress bars.
// Every mark has a <title> (hover text, read by screen readers) and charts come with a data table.
import {h, s} from './dom.js';

export const PALETTE = ['#1f4e79', '#2e86c1', '#e67e22', '#27ae60', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d'];

/** A round axis: {min, max, step} with 3–6 steps of 1, 2, 2.5 or 5 × 10^k. */
function niceScale(lo, hi, integer = false, multipliers = [1, 2, 2.5, 5, 10]) {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = multipliers.map((m) => m * p).find((x) => x >= raw);
  if (integer) step = Math.max(1, Math.round(step));
  const min = Math.floor(lo / step) * step;
  return {min, max: Math.ceil(hi / step - 1e-9) * step, step};
}

function legend(series) {
  return h('ul', {class: 'legend'}, series.map((sr, i) =>
    h('li', null, h('span', {class: 'swatch', style: {background: sr.color || PALETTE[i % PALETTE.length]},
      'aria-hidden': 'true'}), sr.name)));
}

function frame({width, height, label}) {
  return s('svg', {viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': label,
    preserveAspectRatio: 'xMidYMid meet'});
}

function yAxis(svg, {left, top, plotW, plotH, scale, format}) {
  const n = Math.round((scale.max - scale.min) / scale.step);
  for (let i = 0; i <= n; i++) {
    const v = scale.min + i * scale.step;
    const y = top + plotH - (plotH * i) / n;
    svg.append(s('line', {x1: left, x2: left + plotW, y1: y, y2: y, class: i ? 'grid' : 'axis'}));
    svg.append(s('text', {x: left - 6, y: y + 4, class: 'tick', 'text-anchor': 'end'}, format(v)));
  }
}

/**
 * Grouped bars: categories on x, one bar per series; optional target lines per category
 * (targets: [{value, label}] per category, or one {value, label} for all).
 */
export function barChart({categories, series, format = String, valueFormat, label, target, height = 300,
  width = 680, rotate = false, integer = false}) {
  const fmtV = valueFormat || format;
  const left = 56, right = 16, top = 22, bottom = rotate ? 70 : 44;
  const plotW = width - left - right, plotH = height - top - bottom;
  const values = series.flatMap((sr) => sr.values.filter((v) => Number.isFinite(v)));
  const targets = target ? categories.map((_, i) => (Array.isArray(target) ? target[i] : target)) : [];
  const scale = niceScale(0, Math.max(0, ...values, ...targets.filter(Boolean).map((x) => x.value)), integer);
  const max = scale.max;
  const svg = frame({width, height, label});
  yAxis(svg, {left, top, plotW, plotH, scale, format});
  const groupW = plotW / Math.max(1, categories.length);
  const barW = Math.min(38, (groupW * 0.8) / series.length);
  categories.forEach((cat, ci) => {
    const gx = left + ci * groupW + (groupW - barW * series.length) / 2;
    series.forEach((sr, si) => {
      const v = sr.values[ci];
      if (!Number.isFinite(v)) return;
      const bh = (plotH * v) / max;
      const x = gx + si * barW, y = top + plotH - bh;
      const cls = sr.classOf ? sr.classOf(ci) : null;
      svg.append(s('rect', {x: x + 1, y, width: Math.max(1, barW - 2), height: Math.max(0, bh),
        fill: sr.color || PALETTE[si % PALETTE.length], class: cls ? 'bar ' + cls : 'bar'},
      s('title', null, `${cat} · ${sr.name}: ${fmtV(v)}`)));
      if (series.length * categories.length <= 24) {
        svg.append(s('text', {x: x + barW / 2, y: y - 4, class: 'val', 'text-anchor': 'middle'}, fmtV(v)));
      }
    });
    const tg = targets[ci];
    if (tg && Number.isFinite(tg.value)) {
      const y = top + plotH - (plotH * tg.value) / max;
      svg.append(s('line', {x1: left + ci * groupW + 2, x2: left + (ci + 1) * groupW - 2, y1: y, y2: y,
        class: 'target'}, s('title', null, `${cat} · ${tg.label}: ${fmtV(tg.value)}`)));
    }
    const lx = left + ci * groupW + groupW / 2;
    svg.append(rotate
      ? s('text', {x: lx, y: top + plotH + 12, class: 'cat', 'text-anchor': 'end',
        transform: `rotate(-35 ${lx} ${top + plotH + 12})`}, cat)
      : s('text', {x: lx, y: top + plotH + 18, class: 'cat', 'text-anchor': 'middle'}, cat));
  });
  const items = [...series];
  if (target) items.push({name: (Array.isArray(target) ? target.find(Boolean) : target)?.label || '', color: '#c0392b'});
  return h('figure', {class: 'chart-box'}, svg, legend(items));
}

/** Lines: categories (e.g. months) on x, one line per series. */
export function lineChart({categories, series, format = String, label, height = 280, width = 680, max, fitMin = false,
  percent = false}) {
  const left = 56, right = 40, top = 18, bottom = 40;
  const plotW = width - left - right, plotH = height - top - bottom;
  const values = series.flatMap((sr) => sr.values.filter((v) => Number.isFinite(v)));
  const lo = fitMin && values.length ? Math.min(...values) : 0;
  const scale = niceScale(fitMin ? Math.max(0, lo - (Math.max(...values) - lo) * 0.2 - 1e-6) : 0, max ?? Math.max(0, ...values),
    false, percent ? [1, 2, 5, 10] : undefined);
  if (max !== undefined) scale.max = Math.max(scale.max, max);
  const span = scale.max - scale.min;
  const svg = frame({width, height, label});
  yAxis(svg, {left, top, plotW, plotH, scale: {...scale, max: scale.min + Math.round(span / scale.step) * scale.step}, format});
  const step = categories.length > 1 ? plotW / (categories.length - 1) : 0;
  const xAt = (i) => left + (categories.length > 1 ? i * step : plotW / 2);
  categories.forEach((cat, i) => svg.append(s('text', {x: xAt(i), y: top + plotH + 18, class: 'cat',
    'text-anchor': 'middle'}, cat)));
  series.forEach((sr, si) => {
    const color = sr.color || PALETTE[si % PALETTE.length];
    const pts = sr.values.map((v, i) => (Number.isFinite(v) ? [xAt(i), top + plotH - (plotH * (v - scale.min)) / span] : null));
    let d = '', pen = false;
    for (const p of pts) {
      if (!p) { pen = false; continue; }
      d += `${pen ? ' L' : ' M'}${p[0].toFixed(1)} ${p[1].toFixed(1)}`;
      pen = true;
    }
    svg.append(s('path', {d: d.trim(), fill: 'none', stroke: color, class: sr.bold ? 'line bold' : 'line'}));
    pts.forEach((p, i) => {
      if (!p) return;
      svg.append(s('circle', {cx: p[0], cy: p[1], r: sr.bold ? 4 : 3, fill: color},
        s('title', null, `${sr.name} · ${categories[i]}: ${format(sr.values[i])}`)));
    });
  });
  return h('figure', {class: 'chart-box'}, svg, legend(series));
}

/** A labelled progress bar (role=progressbar) for a share 0..1. */
export function progress({label, share, text, status}) {
  const v = Number.isFinite(share) ? Math.max(0, Math.min(1, share)) : 0;
  return h('div', {class: 'progress-row' + (status ? ' ' + status : '')},
    h('div', {class: 'progress-label'}, h('span', null, label), h('span', {class: 'progress-text'}, text)),
    h('div', {class: 'progress', role: 'progressbar', 'aria-label': label, 'aria-valuemin': 0, 'aria-valuemax': 100,
      'aria-valuenow': Math.round(v * 100), 'aria-valuetext': text},
    h('div', {class: 'progress-fill', style: {width: (v * 100).toFixed(1) + '%'}})));
}
