// Pieces shared by the pages.
import {ApiError} from '../api.js';
import {h} from '../dom.js';
import {t, tOr} from '../i18n.js';

export function header(title, ...extra) {
  return h('div', {class: 'page-head'}, h('h1', null, title), ...extra);
}

export function loading() { return h('p', {class: 'loading', role: 'status'}, t('loading')); }

export function errorBox(err, retry) {
  const text = err instanceof ApiError && err.status === 403 ? t('error.forbidden') : `${t('error')}: ${err.message}`;
  return h('div', {class: 'error-box', role: 'alert'}, h('p', null, text),
    retry ? h('button', {type: 'button', class: 'btn', onclick: retry}, t('retry')) : null);
}

/** A connector status chip (OCPP status names are translated when known, else shown as sent). */
export function statusChip(status) {
  const key = String(status || '');
  return h('span', {class: 'chip conn-' + key.replace(/[^A-Za-z]/g, ''), dataset: {status: key}}, tOr('conn.' + key, key));
}

export function targetChip(status) {
  return h('span', {class: 'chip ts-' + String(status).replace(/[^a-z_]/g, ''), dataset: {status}}, tOr('ts.' + status, status));
}

export function onlineChip(online) {
  return h('span', {class: 'chip ' + (online ? 'on' : 'off')}, t(online ? 'online' : 'offline'));
}

/** A section with a heading, for the page's parts. */
export function section(title, ...children) {
  const id = 'sec-' + Math.random().toString(36).slice(2, 8);
  return h('section', {class: 'card', 'aria-labelledby': id}, h('h2', {id}, title), ...children);
}

/** Run an async loader into *box*, with a loading line and an error box with retry. */
export async function fill(box, loader) {
  box.replaceChildren(loading());
  try {
    const content = await loader();
    box.replaceChildren(...[content].flat().filter(Boolean));
  } catch (err) {
    if (err.name === 'AbortError') return;
    box.replaceChildren(errorBox(err, () => fill(box, loader)));
  }
}
