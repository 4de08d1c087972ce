// DOM helpers. Data is only ever set as text (textContent / text nodes) or as attribute values,
// never parsed as HTML: a charger id or a station name cannot inject markup.
const SVGNS = 'http://www.w3.org/2000/svg';

function safeHref(value) {
  const v = String(value);
  return v.startsWith('#') || v.startsWith('/') || v.startsWith('blob:') ? v : '#';
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) {
      if (typeof v !== 'function') throw new Error('event handlers must be functions');
      el.addEventListener(k.slice(2), v);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'style') {
      Object.assign(el.style, v); // CSSOM: allowed by the page's CSP, unlike a style attribute
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv !== null && dv !== undefined) el.dataset[dk] = String(dv);
    } else if (k === 'href') {
      el.setAttribute('href', safeHref(v));
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An HTML element: h('td', {class: 'num'}, 'text', child, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) { el.replaceChildren(); return el; }

/** A link to a dashboard route; path parts are URI-encoded. */
export function routeHref(...parts) {
  return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** A <table> with a caption, header cells and rows (arrays of cells: strings, numbers or nodes). */
export function table({caption, headers, rows, numeric = [], className = 'data', empty}) {
  const head = h('thead', null, h('tr', null, headers.map((label, i) =>
    h('th', {scope: 'col', class: numeric.includes(i) ? 'num' : null}, label))));
  const body = h('tbody', null, rows.length ? rows.map((cells) => {
    const tr = h('tr', cells.attrs || null);
    cells.forEach((c, i) => tr.append(h('td', {class: numeric.includes(i) ? 'num' : null}, c)));
    return tr;
  }) : h('tr', null, h('td', {colspan: headers.length, class: 'empty'}, empty || '—')));
  return h('div', {class: 'table-wrap'}, h('table', {class: className},
    caption ? h('caption', null, caption) : null, head, body));
}
