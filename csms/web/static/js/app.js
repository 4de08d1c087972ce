// The dashboard shell: sign-in, role-based navigation, hash routing, live events, language.
import {api, ApiError, clearSession, LiveEvents, onUnauthorized, saveSession, session} from './api.js';
import {clear, h} from './dom.js';
import {getLang, setLang, t} from './i18n.js';
import * as overview from './pages/overview.js';
import * as mapPage from './pages/map.js';
import * as charger from './pages/charger.js';
import * as lists from './pages/lists.js';
import * as targets from './pages/targets.js';
import * as operations from './pages/operations.js';

const OPS = ['admin', 'operator'];
const ALL = ['admin', 'operator', 'bureau'];
const PAGES = {
  overview: {roles: OPS, nav: 'nav.overview', render: overview.render},
  map: {roles: OPS, nav: 'nav.map', render: mapPage.render},
  sessions: {roles: OPS, nav: 'nav.sessions', render: lists.renderSessions},
  faults: {roles: OPS, nav: 'nav.faults', render: lists.renderFaults},
  targets: {roles: ALL, nav: 'nav.targets', render: targets.render},
  operations: {roles: ALL, nav: 'nav.operations', render: operations.render},
  charger: {roles: OPS, render: charger.render},
};

const live = new LiveEvents();
let cleanup = null;
let signInMessage = '';

function homeOf(role) { return role === 'bureau' ? 'targets' : 'overview'; }

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  return {name: parts[0] || '', params: parts.slice(1), query: new URLSearchParams(qs || '')};
}

export function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

function renderShell(current) {
  const sess = session();
  document.title = t('app.title');
  document.getElementById('brand-title').textContent = t('app.title');
  document.querySelector('.skip').textContent = t('skip');
  const nav = clear(document.getElementById('nav'));
  nav.setAttribute('aria-label', t('nav.main'));
  if (sess) {
    const ul = h('ul');
    for (const [name, page] of Object.entries(PAGES)) {
      if (!page.nav || !page.roles.includes(sess.role)) continue;
      ul.append(h('li', null, h('a', {href: '#/' + name, 'aria-current': name === current ? 'page' : null,
        dataset: {page: name}}, t(page.nav))));
    }
    nav.append(ul);
  }
  const langBtn = document.getElementById('lang');
  langBtn.textContent = t('lang.switch');
  langBtn.setAttribute('aria-label', t('lang.switch.label'));
  langBtn.lang = getLang() === 'zh' ? 'en' : 'zh-CN';
  const who = document.getElementById('who');
  who.textContent = sess ? `${sess.name} · ${t('role.' + sess.role)}` : '';
  const out = document.getElementById('signout');
  out.hidden = !sess;
  out.textContent = t('signout');
}

function renderLive(state) {
  const el = document.getElementById('live');
  el.className = 'live is-' + state;
  el.textContent = state === 'idle' ? '' : t(state === 'live' ? 'live.on' : state === 'connecting' ? 'live.connecting' : 'live.retry');
}

function renderSignIn(main) {
  const input = h('input', {id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true,
    spellcheck: 'false', 'aria-describedby': 'signin-intro'});
  const msg = h('p', {class: 'error', role: 'alert'}, signInMessage);
  signInMessage = '';
  const button = h('button', {type: 'submit', class: 'btn primary'}, t('signin.submit'));
  const form = h('form', {class: 'card signin', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) { input.focus(); return; }
    button.disabled = true;
    msg.textContent = '';
    try {
      const me = await api('/me', {token});
      saveSession({token, name: me.name, role: me.role});
      startLive();
      go('#/' + homeOf(me.role));
    } catch (err) {
      msg.textContent = err instanceof ApiError && err.status === 401 ? t('signin.bad') : t('signin.error') + err.message;
      button.disabled = false;
      input.select();
    }
  }},
  h('h1', null, t('signin.title')),
  h('p', {id: 'signin-intro'}, t('signin.intro')),
  h('label', {for: 'token'}, t('signin.token')), input, button, msg);
  main.append(form);
  input.focus();
}

function startLive() {
  const sess = session();
  if (sess && OPS.includes(sess.role)) live.start(); else live.stop();
}

function route() {
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const main = clear(document.getElementById('main'));
  const sess = session();
  const {name, params, query} = parseHash();
  if (!sess) {
    renderShell('signin');
    if (name !== 'signin') history.replaceState(null, '', '#/signin');
    renderSignIn(main);
    return;
  }
  let page = PAGES[name];
  if (!page || !page.roles.includes(sess.role)) {
    const home = homeOf(sess.role);
    history.replaceState(null, '', '#/' + home);
    return route();
  }
  renderShell(name);
  main.dataset.page = name;
  try {
    cleanup = page.render({main, params, query, role: sess.role, live, go}) || null;
  } catch (e) {
    console.error(e);
    main.append(h('p', {class: 'error'}, t('error') + ': ' + e.message));
  }
}

onUnauthorized(() => {
  if (!session()) return;
  clearSession();
  live.stop();
  signInMessage = t('signin.expired');
  go('#/signin');
});

document.getElementById('signout').addEventListener('click', () => {
  clearSession();
  live.stop();
  go('#/signin');
});
document.getElementById('lang').addEventListener('click', () => {
  setLang(getLang() === 'zh' ? 'en' : 'zh');
  route();
  renderLive(live.state);
});
live.onState(renderLive);
window.addEventListener('hashchange', route);
setLang(getLang());
startLive();
route();
